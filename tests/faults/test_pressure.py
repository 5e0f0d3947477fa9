"""Load faults: many tracking threads, a full buffer under each overflow policy."""

from __future__ import annotations

import threading
import time
from typing import List, Tuple

import pytest

from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.event_store import InMemoryEventStore
from tests.faults.helpers import (
    deliver_all,
    delivered_ids,
    make_emitter,
    track,
    wait_until,
)


def test_sixteen_threads_tracking_at_once_deliver_exactly_once(
    snowplow_collector: LocalCollector, kind: str, method: str
) -> None:
    per_thread = 40 if method == "post" else 15
    emitter = make_emitter(
        kind, snowplow_collector.endpoint, method=method, batch_size=10, thread_count=4
    )
    tracked: List[str] = []
    lock = threading.Lock()
    errors: List[BaseException] = []

    def worker() -> None:
        try:
            ids = track(emitter, per_thread)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
            return
        with lock:
            tracked.extend(ids)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(tracked) == 16 * per_thread
    assert deliver_all(emitter, snowplow_collector, tracked)
    received = delivered_ids(snowplow_collector)
    assert len(received) == len(tracked)
    assert set(received) == set(tracked)
    stats = emitter.stats()
    assert stats.accepted == stats.sent == len(tracked)
    assert stats.dropped == stats.failed == stats.pending == 0


def _fill_while_rate_limited(
    collector: LocalCollector, kind: str, policy: str, block_timeout: float = 0.2
) -> Tuple[object, List[str], List[Tuple[List[str], str]], List[float]]:
    """Capacity 5; the first send is answered 503 with a long Retry-After, so nothing is sent
    afterwards; then 3 more events are tracked into the full buffer."""
    collector.fail_next(10**6, status=503, headers={"Retry-After": "60"})
    dropped: List[Tuple[List[str], str]] = []
    emitter = make_emitter(
        kind,
        collector.endpoint,
        buffer_capacity=5,
        overflow_policy=policy,
        block_timeout=block_timeout,
        on_drop=lambda events, reason: dropped.append(([e["eid"] for e in events], reason)),
    )
    first = track(emitter, 5)
    assert wait_until(lambda: emitter.stats().retried == 5, timeout=5)
    durations = []
    later = []
    for _ in range(3):
        started = time.monotonic()
        later.extend(track(emitter, 1))
        durations.append(time.monotonic() - started)
    return emitter, first + later, dropped, durations


def _buffered_ids(emitter: object) -> List[str]:
    store = emitter.event_store  # type: ignore[attr-defined]
    assert isinstance(store, InMemoryEventStore)
    return [event["eid"] for event in store.event_buffer]


@pytest.mark.parametrize("policy", ["drop_newest", "block"])
def test_full_buffer_drops_the_newest_events_and_reports_them(
    snowplow_collector: LocalCollector, kind: str, policy: str
) -> None:
    emitter, tracked, dropped, durations = _fill_while_rate_limited(
        snowplow_collector, kind, policy
    )
    assert [ids for ids, _ in dropped] == [[eid] for eid in tracked[5:]]
    assert {reason for _, reason in dropped} == {"buffer_full"}
    assert _buffered_ids(emitter) == tracked[:5]
    stats = emitter.stats()  # type: ignore[attr-defined]
    assert stats.dropped == 3 and stats.pending == 5 and stats.accepted == 5
    if policy == "block":
        # Each call waited for room for block_timeout (0.2 s), then gave up.
        assert all(0.15 <= d < 3 for d in durations)
    else:
        assert all(d < 1 for d in durations)
    assert len(snowplow_collector.requests()) == 1  # nothing sent inside the Retry-After


def test_full_buffer_drop_oldest_keeps_the_newest_events(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    emitter, tracked, dropped, _ = _fill_while_rate_limited(snowplow_collector, kind, "drop_oldest")
    assert sorted(eid for ids, _ in dropped for eid in ids) == sorted(tracked[:3])
    assert {reason for _, reason in dropped} == {"buffer_full"}
    assert _buffered_ids(emitter) == tracked[3:]
    stats = emitter.stats()  # type: ignore[attr-defined]
    assert stats.dropped == 3 and stats.pending == 5 and stats.accepted == 8


def test_block_policy_waits_for_room_instead_of_dropping(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    snowplow_collector.delay_next(3, seconds=0.2)
    dropped: List[str] = []
    emitter = make_emitter(
        kind,
        snowplow_collector.endpoint,
        buffer_capacity=5,
        overflow_policy="block",
        block_timeout=5.0,
        on_drop=lambda events, reason: dropped.append(reason),
    )
    tracked = track(emitter, 30)
    assert deliver_all(emitter, snowplow_collector, tracked)
    assert dropped == []
    assert sorted(delivered_ids(snowplow_collector)) == sorted(tracked)
    assert emitter.stats().dropped == 0


def test_drop_oldest_also_applies_when_a_retry_overflows_the_buffer(
    snowplow_collector: LocalCollector,
) -> None:
    """Events tracked while a batch is in flight fill the buffer; the failed batch coming
    back then overflows it: under drop_oldest the oldest (the failed batch) make room."""
    snowplow_collector.fail_next(1, status=503, headers={"Retry-After": "60"})
    snowplow_collector.delay_next(1, seconds=0.5)
    dropped: List[List[str]] = []
    emitter = make_emitter(
        "AsyncEmitter",
        snowplow_collector.endpoint,
        buffer_capacity=5,
        overflow_policy="drop_oldest",
        on_drop=lambda events, reason: dropped.append([e["eid"] for e in events]),
    )
    first = track(emitter, 5)
    assert snowplow_collector.wait_for_requests(1, timeout=5)  # first batch in flight
    later = track(emitter, 3)
    assert wait_until(lambda: emitter.stats().dropped == 3, timeout=5)
    assert sorted(eid for ids in dropped for eid in ids) == sorted(first[:3])
    assert _buffered_ids(emitter) == first[3:] + later
