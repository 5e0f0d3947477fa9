"""Fixtures for the core (pure, network-free) tests."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any, Dict, Iterator, List

import pytest

from snowplow_tracker import contracts
from snowplow_tracker.snowplow import Snowplow

FIXED_TIME = 1_700_000_000.123456
FIXED_DTM = int(FIXED_TIME * 1000)


class RecordingEmitter:
    """A duck-typed emitter that keeps every payload it is given."""

    def __init__(self) -> None:
        self.payloads: List[Dict[str, Any]] = []
        self.calls: List[str] = []

    def input(self, payload: Dict[str, Any]) -> None:
        self.payloads.append(payload)

    @property
    def last(self) -> Dict[str, Any]:
        return self.payloads[-1]


class FlushingEmitter(RecordingEmitter):
    """A recording emitter with the 1.1.0 flush methods."""

    def flush(self) -> None:
        self.calls.append("flush")

    def sync_flush(self) -> None:
        self.calls.append("sync_flush")

    def async_flush(self) -> None:
        self.calls.append("async_flush")


class LifecycleEmitter(FlushingEmitter):
    """A recording emitter with force_flush/shutdown, as the real emitters have."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: List[float] = []

    def force_flush(self, timeout: float = 5.0) -> str:
        self.calls.append("force_flush")
        self.timeouts.append(timeout)
        return "report"

    def shutdown(self, timeout: float = 5.0) -> str:
        self.calls.append("shutdown")
        self.timeouts.append(timeout)
        return "report"


@pytest.fixture(autouse=True)
def _clean_global_state() -> Iterator[None]:
    contracts.enable_contracts()
    Snowplow.reset()
    yield
    contracts.enable_contracts()
    Snowplow.reset()


@pytest.fixture
def recorder() -> RecordingEmitter:
    return RecordingEmitter()


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Pin ``time.time`` and make ``uuid.uuid4`` deterministic; returns the ids handed out."""
    counter = itertools.count(1)
    issued: List[str] = []

    def fake_uuid4() -> uuid.UUID:
        value = uuid.UUID(int=next(counter), version=4)
        issued.append(str(value))
        return value

    monkeypatch.setattr(time, "time", lambda: FIXED_TIME)
    monkeypatch.setattr(uuid, "uuid4", fake_uuid4)
    return issued
