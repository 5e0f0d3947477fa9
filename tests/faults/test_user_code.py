"""Faults in user code: callbacks and custom event stores that raise."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Tuple

import pytest

from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.emitters import logger as emitters_logger
from snowplow_tracker.event_store import InMemoryEventStore
from snowplow_tracker.typing import PayloadDict, PayloadDictList
from tests.faults.helpers import deliver_all, delivered_ids, make_emitter, track, wait_until


def boom(*_: Any) -> None:
    raise RuntimeError("user callback failed")


def test_raising_callbacks_are_logged_and_never_stop_delivery(
    snowplow_collector: LocalCollector, kind: str, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    snowplow_collector.fail_next(1, status=503)
    emitter = make_emitter(
        kind,
        snowplow_collector.endpoint,
        method=method,
        batch_size=3,
        buffer_capacity=20,
        on_success=boom,
        on_failure=boom,
        on_drop=boom,
    )
    with caplog.at_level(logging.ERROR, logger="snowplow_tracker"):
        tracked = track(emitter, 9)
        assert deliver_all(emitter, snowplow_collector, tracked)
        more = track(emitter, 6)  # the sender is still alive after the exceptions
        assert deliver_all(emitter, snowplow_collector, more)
        emitter.shutdown(timeout=2)
        track(emitter, 1)  # dropped after shutdown: on_drop raises, the caller does not see it

    assert sorted(delivered_ids(snowplow_collector)) == sorted(tracked + more)
    messages = [r.getMessage() for r in caplog.records]
    assert "on_success callback raised" in messages
    assert "on_failure callback raised" in messages
    assert "on_drop callback raised" in messages
    stats = emitter.stats()
    assert stats.sent == 15 and stats.dropped == 1 and stats.failed == 0


def test_a_callback_that_tracks_does_not_deadlock(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    follow_ups: List[str] = []
    budget = [3]
    lock = threading.RLock()  # the sync emitter calls back in the tracking thread

    def on_success(events: PayloadDictList) -> None:
        with lock:
            if budget[0] == 0:
                return
            budget[0] -= 1
            follow_ups.extend(track(emitter, 1))

    emitter = make_emitter(kind, snowplow_collector.endpoint, batch_size=1, on_success=on_success)
    tracked = track(emitter, 2)
    assert wait_until(lambda: len(follow_ups) == 3, timeout=5)
    assert deliver_all(emitter, snowplow_collector, tracked + follow_ups)


def test_a_callback_that_flushes_does_not_wait_for_itself(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    calls: List[float] = []

    def on_success(events: PayloadDictList) -> None:
        if len(calls) < 2:
            started = time.monotonic()
            emitter.sync_flush()
            emitter.force_flush(timeout=10)
            calls.append(time.monotonic() - started)

    emitter = make_emitter(kind, snowplow_collector.endpoint, batch_size=2, on_success=on_success)
    tracked = track(emitter, 5)
    assert deliver_all(emitter, snowplow_collector, tracked)
    assert wait_until(lambda: len(calls) == 2, timeout=5)
    assert max(calls) < 3  # 1.1.0 deadlocked here (AsyncEmitter: queue.join() on itself)


class FlakyStore:
    """A custom store (1.1.0 protocol only) wrapping a list, raising on chosen calls."""

    def __init__(self) -> None:
        self.inner = InMemoryEventStore(logging.getLogger("test.flaky"), 1000)
        self.fail_add_for = "bad"
        self.get_failures = 1
        self.size_failures = 2
        self.retry_cleanup_failures = 1
        self.lock = threading.Lock()

    def add_event(self, payload: PayloadDict) -> bool:
        if payload.get("se_la") == self.fail_add_for:
            raise OSError("disk full")
        return self.inner.add_event(payload)

    def get_events_batch(self) -> PayloadDictList:
        with self.lock:
            if self.get_failures:
                self.get_failures -= 1
                raise RuntimeError("store read failed")
        return self.inner.get_events_batch()

    def cleanup(self, batch: PayloadDictList, need_retry: bool) -> None:
        with self.lock:
            if need_retry and self.retry_cleanup_failures:
                self.retry_cleanup_failures -= 1
                raise RuntimeError("store write failed")
        self.inner.cleanup(batch, need_retry)

    def size(self) -> int:
        with self.lock:
            if self.size_failures:
                self.size_failures -= 1
                raise RuntimeError("store size failed")
        return self.inner.size()


def test_a_raising_custom_store_never_breaks_tracking_or_loses_events_silently(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    store = FlakyStore()
    dropped: List[Tuple[List[str], str]] = []
    emitter = make_emitter(
        kind,
        snowplow_collector.endpoint,
        batch_size=4,
        event_store=store,
        on_drop=lambda events, reason: dropped.append(([e["eid"] for e in events], reason)),
    )
    good = track(emitter, 6)
    bad = track(emitter, 2, se_la="bad")  # add_event raises: reported, never raised
    good += track(emitter, 6)
    assert deliver_all(emitter, snowplow_collector, good)
    assert sorted(delivered_ids(snowplow_collector)) == sorted(good)
    assert [(ids, reason) for ids, reason in dropped] == [([eid], "store_error") for eid in bad]

    # A retry the store cannot keep is reported as dropped, not lost silently.
    snowplow_collector.fail_next(1, status=503)
    lost = track(emitter, 4)
    assert wait_until(lambda: len(dropped) == 3, timeout=5)
    assert dropped[2] == (lost, "store_error")

    # The sender survived all of it.
    later = track(emitter, 4)
    assert deliver_all(emitter, snowplow_collector, later)
    stats = emitter.stats()
    assert stats.dropped == 6 and stats.failed == 0 and stats.sent == len(good) + 4


def test_store_errors_are_logged_without_payloads(
    snowplow_collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FlakyStore):
        def add_event(self, payload: PayloadDict) -> bool:
            raise OSError("disk full")

    emitter = make_emitter("AsyncEmitter", snowplow_collector.endpoint, event_store=Broken())
    with caplog.at_level(logging.INFO, logger=emitters_logger.name):
        ids = track(emitter, 50, se_la="secret-value")
    assert emitter.stats().dropped == 50
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # rate-limited: the other 49 go to DEBUG
    text = caplog.text
    assert "secret-value" not in text and ids[0] not in text
