"""Fixtures of the fault tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from snowplow_tracker import _lifecycle


@pytest.fixture(autouse=True)
def _stop_emitters_after_each_test() -> Iterator[None]:
    """Stop every emitter a test created, so no retry of one test lands in the next one."""
    before = set(map(id, _lifecycle.live_emitters()))
    yield
    for emitter in _lifecycle.live_emitters():
        if id(emitter) not in before:
            emitter.shutdown(timeout=0)


@pytest.fixture(params=["Emitter", "AsyncEmitter"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which emitter class a test runs with."""
    return str(request.param)


@pytest.fixture(params=["post", "get"])
def method(request: pytest.FixtureRequest) -> str:
    """Which HTTP method a test sends with."""
    return str(request.param)
