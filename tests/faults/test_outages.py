"""Collector faults: outages, failing statuses, rate limits, slowness, resets, size limits.

Every test tracks a known set of events and checks the exact set the collector stored as good
(``good()``; ``event_ids()`` also lists failed attempts).
"""

from __future__ import annotations

import time
from typing import List, Tuple

import pytest

from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.retry import RetryPolicy
from tests.faults.helpers import (
    blackhole,
    deliver_all,
    delivered_ids,
    duplicates,
    free_port,
    make_emitter,
    post_ids,
    track,
    wait_until,
)


def test_collector_down_at_start_then_up(kind: str, method: str) -> None:
    port = free_port()
    emitter = make_emitter(kind, f"http://127.0.0.1:{port}", method=method, batch_size=5)
    sent = track(emitter, 12)
    assert wait_until(lambda: emitter.stats().retried > 0, timeout=5)
    assert emitter.stats().sent == 0

    with LocalCollector(port=port) as collector:
        assert deliver_all(emitter, collector, sent)
        received = delivered_ids(collector)
        assert set(received) == set(sent)
        assert len(received) == len(sent)  # nothing reached a collector before: no duplicates
        stats = emitter.stats()
        assert stats.sent == len(sent) and stats.failed == 0 and stats.dropped == 0
        assert stats.pending == 0


def test_flapping_500s_deliver_every_event_once(
    snowplow_collector: LocalCollector, kind: str, method: str
) -> None:
    snowplow_collector.fail_fraction(0.5, status=500, seed=11)
    emitter = make_emitter(
        kind,
        snowplow_collector.endpoint,
        method=method,
        batch_size=4,
        retry_policy=RetryPolicy(max_delay=0.05),
    )
    sent = track(emitter, 40)
    assert deliver_all(emitter, snowplow_collector, sent, timeout=20)

    received = delivered_ids(snowplow_collector)
    assert set(received) == set(sent)
    assert len(received) == len(sent)  # a 500 stores nothing, so no duplicates
    failed_attempts = [r for r in snowplow_collector.requests() if r["status"] == 500]
    assert failed_attempts  # the fault did fire
    assert set(sent) <= set(snowplow_collector.event_ids())
    stats = emitter.stats()
    assert stats.sent == 40 and stats.failed == 0 and stats.retried > 0 and stats.pending == 0


def test_429_with_retry_after_waits_before_any_new_request(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    snowplow_collector.fail_next(1, status=429, headers={"Retry-After": "1"})
    emitter = make_emitter(
        kind,
        snowplow_collector.endpoint,
        batch_size=3,
        retry_policy=RetryPolicy(max_delay=0.01),
    )
    first = track(emitter, 3)
    assert snowplow_collector.wait_for_requests(1, timeout=5)
    assert wait_until(lambda: emitter.stats().retried == 3, timeout=5)

    # Inside the window: new events and every kind of flush send nothing.
    later = track(emitter, 3)
    emitter.sync_flush()
    report = emitter.force_flush(timeout=0.2)
    assert report.sent == 0 and report.pending == 6
    assert len(snowplow_collector.requests()) == 1

    assert deliver_all(emitter, snowplow_collector, first + later, timeout=10)
    requests_seen = snowplow_collector.requests()
    assert requests_seen[0]["status"] == 429
    waited = requests_seen[1]["timestamp"] - requests_seen[0]["timestamp"]
    assert waited >= 1.0
    received = delivered_ids(snowplow_collector)
    assert sorted(received) == sorted(first + later)


def test_force_flush_waits_out_a_short_retry_after(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    snowplow_collector.fail_next(1, status=503, headers={"Retry-After": "1"})
    emitter = make_emitter(kind, snowplow_collector.endpoint, batch_size=100)
    sent = track(emitter, 5)
    first = emitter.force_flush(timeout=5)
    assert first.sent == 0 and first.pending == 5  # one attempt, answered 503

    started = time.monotonic()
    report = emitter.force_flush(timeout=5)
    assert report.sent == 5 and report.pending == 0 and not report.timed_out
    assert time.monotonic() - started >= 0.5  # it waited for the window instead of sending
    assert sorted(delivered_ids(snowplow_collector)) == sorted(sent)


def test_slow_collector_past_the_timeout_duplicates_only_that_request(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    snowplow_collector.delay_next(1, seconds=1.2)
    emitter = make_emitter(kind, snowplow_collector.endpoint, batch_size=4, request_timeout=0.3)
    first_batch = track(emitter, 4)
    rest = track(emitter, 8)
    sent = first_batch + rest
    assert deliver_all(emitter, snowplow_collector, sent)
    # The slow request is stored once its delay is over: wait for that duplicate too.
    assert wait_until(lambda: len(delivered_ids(snowplow_collector)) >= len(sent) + 4, timeout=5)

    received = delivered_ids(snowplow_collector)
    assert set(received) == set(sent)
    assert duplicates(received) <= set(first_batch)
    assert len(received) == len(sent) + len(duplicates(received))


@pytest.mark.parametrize("mode", ["close", "reset", "partial"])
def test_connection_dropped_mid_request_is_retried(
    snowplow_collector: LocalCollector, kind: str, mode: str
) -> None:
    snowplow_collector.drop_next(1, mode=mode)
    emitter = make_emitter(kind, snowplow_collector.endpoint, batch_size=5)
    sent = track(emitter, 10)
    assert deliver_all(emitter, snowplow_collector, sent)
    received = delivered_ids(snowplow_collector)
    assert sorted(received) == sorted(sent)  # the dropped request stored nothing
    assert emitter.stats().retried >= 5


def test_connection_dropped_after_storing_duplicates_only_that_batch(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    snowplow_collector.drop_next(1, mode="reset", store=True)
    emitter = make_emitter(kind, snowplow_collector.endpoint, batch_size=5)
    first_batch = track(emitter, 5)
    rest = track(emitter, 10)
    assert deliver_all(emitter, snowplow_collector, first_batch + rest)
    received = delivered_ids(snowplow_collector)
    assert set(received) == set(first_batch + rest)
    assert duplicates(received) == set(first_batch)
    assert len(received) == len(first_batch) * 2 + len(rest)


def test_413_splits_the_batch_and_gives_up_an_event_too_large_for_any_request(kind: str) -> None:
    failures: List[Tuple[int, List[str]]] = []
    with LocalCollector(max_body_bytes=2500) as collector:
        emitter = make_emitter(
            kind,
            collector.endpoint,
            batch_size=10,
            on_failure=lambda count, events: failures.append((count, [e["eid"] for e in events])),
        )
        small = track(emitter, 4, se_la="x" * 100)
        huge = track(emitter, 1, se_la="y" * 4000)
        more = track(emitter, 5, se_la="x" * 100)
        emitter.force_flush(timeout=10)

        received = delivered_ids(collector)
        assert sorted(received) == sorted(small + more)
        statuses = [r["status"] for r in collector.requests()]
        assert statuses[0] == 413 and 200 in statuses
        assert statuses.count(413) <= 5  # halving, not one request per event
        stats = emitter.stats()
        assert stats.failed == 1 and stats.sent == 9 and stats.pending == 0
        given_up = [ids for _, ids in failures if huge[0] in ids]
        assert given_up == [huge]  # reported once, alone
        for request in collector.requests():
            if request["status"] == 200:
                assert len(request["body"]) <= 2500


def test_byte_limit_sends_an_oversized_event_alone_once_then_reports_it_failed(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    snowplow_collector.fail_next(1, status=500)
    emitter = make_emitter(kind, snowplow_collector.endpoint, batch_size=10, byte_limit=2000)
    huge = track(emitter, 1, se_la="z" * 3000)
    normal = track(emitter, 3)
    assert deliver_all(emitter, snowplow_collector, normal)
    assert wait_until(lambda: emitter.stats().failed == 1, timeout=5)
    attempts = [r for r in snowplow_collector.requests() if huge[0] in post_ids(r)]
    assert len(attempts) == 1 and post_ids(attempts[0]) == huge  # alone, once, not retried
    assert set(delivered_ids(snowplow_collector)) == set(normal)


def test_sync_flush_against_an_always_failing_collector_returns_promptly(
    snowplow_collector: LocalCollector, kind: str, method: str
) -> None:
    snowplow_collector.fail_next(10**6, status=500)
    emitter = make_emitter(
        kind,
        snowplow_collector.endpoint,
        method=method,
        batch_size=10,
        thread_count=2,
        retry_policy=RetryPolicy(max_delay=30),
    )
    track(emitter, 25)
    assert wait_until(lambda: len(snowplow_collector.requests()) >= 1, timeout=5)
    for _ in range(3):
        before = len(snowplow_collector.requests())
        started = time.monotonic()
        emitter.sync_flush()
        assert time.monotonic() - started < 5
        assert len(snowplow_collector.requests()) - before <= 2  # one per worker at most
    report = emitter.force_flush(timeout=2)
    assert report.sent == 0 and report.failed == 0 and report.pending == 25
    assert len(snowplow_collector.requests()) <= 12


def test_sync_emitter_tracking_call_is_bounded_by_the_request_timeout() -> None:
    hole = blackhole()
    try:
        host, port = hole.getsockname()
        emitter = make_emitter(
            "Emitter",
            f"http://{host}:{port}",
            batch_size=5,
            request_timeout=0.5,
            retry_policy=RetryPolicy(max_delay=30),
        )
        durations = []
        for _ in range(20):
            started = time.monotonic()
            track(emitter, 1)
            durations.append(time.monotonic() - started)
        # The 5th call waited for one request (at most its timeout); the backoff that
        # followed made every later call return without trying.
        assert max(durations) < 3
        assert sum(1 for d in durations if d > 0.3) == 1
        assert emitter.stats().requests == 1 and emitter.stats().pending == 20
    finally:
        hole.close()


def test_async_tracking_calls_never_wait_for_an_unresponsive_collector() -> None:
    hole = blackhole()
    try:
        host, port = hole.getsockname()
        emitter = make_emitter("AsyncEmitter", f"http://{host}:{port}", batch_size=5)
        started = time.monotonic()
        track(emitter, 200)
        assert time.monotonic() - started < 2
        report = emitter.force_flush(timeout=0.5)
        assert report.timed_out and report.pending == 200
    finally:
        hole.close()


def test_a_zero_retry_delay_never_becomes_a_busy_loop(
    snowplow_collector: LocalCollector, kind: str
) -> None:
    snowplow_collector.fail_next(10**6, status=500)
    emitter = make_emitter(
        kind,
        snowplow_collector.endpoint,
        batch_size=5,
        max_retry_delay_seconds=0,
        retry_policy=None,
    )
    track(emitter, 5)
    time.sleep(1.0)
    # Retries keep coming (at least 50 ms apart), not thousands per second as in 1.1.0.
    attempts = len(snowplow_collector.requests())
    assert 3 <= attempts <= 30
    assert emitter.stats().pending == 5


def test_shutdown_during_a_slow_request_returns_in_time_and_keeps_the_rest(
    snowplow_collector: LocalCollector,
) -> None:
    snowplow_collector.delay_next(1, seconds=1.0)
    emitter = make_emitter("AsyncEmitter", snowplow_collector.endpoint, batch_size=2)
    first = track(emitter, 2)  # in flight, held by the collector
    assert snowplow_collector.wait_for_requests(1, timeout=5)
    track(emitter, 8)  # one batch waits in the queue, the rest in the store
    started = time.monotonic()
    report = emitter.shutdown(timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert report.timed_out and report.pending == 10
    # The request in flight completes; nothing else is sent after shutdown.
    assert wait_until(lambda: emitter.stats().sent == 2, timeout=5)
    time.sleep(0.2)
    assert sorted(delivered_ids(snowplow_collector)) == sorted(first)
    assert emitter.stats().pending == 8
    assert not emitter._dispatcher.is_alive()  # type: ignore[attr-defined]
    workers = emitter._workers  # type: ignore[attr-defined]
    assert wait_until(lambda: not any(w.is_alive() for w in workers), timeout=5)
