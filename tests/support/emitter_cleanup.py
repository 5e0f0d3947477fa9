"""A fixture for test packages whose tests create emitters: each test's emitters are stopped
after it, so that no retry or timer of one test lands in the next one.

Import ``stop_emitters_after_each_test`` into a ``conftest.py`` to make it autouse there.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from snowplow_tracker import _lifecycle


@pytest.fixture(autouse=True)
def stop_emitters_after_each_test() -> Iterator[None]:
    """Stop every emitter a test created."""
    before = set(map(id, _lifecycle.live_emitters()))
    yield
    for emitter in _lifecycle.live_emitters():
        if id(emitter) not in before:
            emitter.shutdown(timeout=0)
