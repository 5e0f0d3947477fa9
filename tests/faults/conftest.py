"""Fixtures of the fault tests."""

from __future__ import annotations

import pytest

from tests.support.emitter_cleanup import stop_emitters_after_each_test  # noqa: F401 (autouse)


@pytest.fixture(params=["Emitter", "AsyncEmitter"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which emitter class a test runs with."""
    return str(request.param)


@pytest.fixture(params=["post", "get"])
def method(request: pytest.FixtureRequest) -> str:
    """Which HTTP method a test sends with."""
    return str(request.param)
