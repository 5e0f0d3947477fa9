"""Fixtures for the local collector tests."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator, Set

import pytest
import requests

from snowplow_tracker.collector import LocalCollector


def _threads() -> Set[int]:
    return {t.ident for t in threading.enumerate() if t.ident is not None}


@pytest.fixture(autouse=True)
def no_leftover_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every collector started by a test is fully stopped (no thread left behind)."""
    shared = {"snowplow_collector", "_snowplow_collector_session", "pytester"}
    if shared & set(request.fixturenames):
        yield
        return
    before = _threads()
    yield
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        if not extra:
            return
        time.sleep(0.02)
    names = [t.name for t in extra]
    pytest.fail(f"threads left running after the test: {names}")


@pytest.fixture
def collector(shared_iglu_dir: Path) -> Iterator[LocalCollector]:
    """A strict collector with the published Iglu schemas, stopped after the test."""
    with LocalCollector(iglu_dirs=[shared_iglu_dir], body_read_timeout=0.5) as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session closed after the test."""
    with requests.Session() as http:
        yield http
