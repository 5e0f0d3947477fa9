"""Emitter behaviour of snowplow-tracker 1.1.0 (spec section 3), against the local collector."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

import pytest
import requests

import snowplow_tracker.emitters as emitters_module
from snowplow_tracker import StructuredEvent, Tracker
from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.emitters import AsyncEmitter, Emitter
from snowplow_tracker.event_store import InMemoryEventStore
from snowplow_tracker.retry import RetryPolicy
from snowplow_tracker.typing import PayloadDictList
from tests.support.payloads import event, fill


def delivered_ids(collector: LocalCollector) -> List[str]:
    """Event ids the collector accepted (stored as good), in arrival order, duplicates kept."""
    return [good["event"]["event_id"] for good in collector.good()]


def post_bodies(collector: LocalCollector) -> List[Dict[str, Any]]:
    bodies = []
    for request in collector.requests():
        if request["method"] == "POST":
            bodies.append(json.loads(request["body"]))
    return bodies


def test_post_emitter_sends_a_request_per_batch_size_and_keeps_the_rest(
    snowplow_collector: LocalCollector,
) -> None:
    emitter = Emitter(snowplow_collector.endpoint, batch_size=10)
    sent = [event() for _ in range(25)]
    for payload in sent:
        emitter.input(payload)

    assert snowplow_collector.wait_for(20, timeout=5)
    assert [len(body["data"]) for body in post_bodies(snowplow_collector)] == [10, 10]
    assert emitter.event_store.size() == 5

    emitter.sync_flush()
    assert snowplow_collector.wait_for(25, timeout=5)
    assert delivered_ids(snowplow_collector) == [p["eid"] for p in sent]


def test_post_body_is_the_payload_data_envelope_with_string_values_and_stm_last(
    snowplow_collector: LocalCollector,
) -> None:
    emitter = Emitter(snowplow_collector.endpoint, batch_size=1)
    emitter.input(event(se_va=2.5, vid=3))

    assert snowplow_collector.wait_for(1, timeout=5)
    (request,) = snowplow_collector.requests()
    assert request["path"] == "/com.snowplowanalytics.snowplow/tp2"
    body = json.loads(request["body"])
    assert list(body) == ["schema", "data"]
    assert body["schema"] == "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
    (sent,) = body["data"]
    assert all(isinstance(value, str) for value in sent.values())
    assert sent["se_va"] == "2.5" and sent["vid"] == "3"
    assert list(sent)[-1] == "stm"
    assert request["body"].decode("ascii") == json.dumps(body)


def test_stm_has_millisecond_precision(snowplow_collector: LocalCollector) -> None:
    emitter = Emitter(snowplow_collector.endpoint, batch_size=1)
    stamps = set()
    for _ in range(5):
        emitter.input(event())
        time.sleep(0.003)
    assert snowplow_collector.wait_for(5, timeout=5)
    for payload in snowplow_collector.payloads():
        stamps.add(payload["stm"])
    assert any(not stamp.endswith("000") for stamp in stamps)


def test_get_emitter_sends_one_request_per_event_to_the_pixel(
    snowplow_collector: LocalCollector,
) -> None:
    emitter = Emitter(snowplow_collector.endpoint, method="get")
    sent = [event() for _ in range(3)]
    for payload in sent:
        emitter.input(payload)

    assert snowplow_collector.wait_for(3, timeout=5)
    requests_seen = snowplow_collector.requests()
    assert [r["method"] for r in requests_seen] == ["GET"] * 3
    assert all(r["path"] == "/i" for r in requests_seen)
    assert delivered_ids(snowplow_collector) == [p["eid"] for p in sent]
    # GET emitters keep the tracker's dict untouched (no stm added to the caller's dict).
    assert all("stm" not in p for p in sent)


def test_on_success_gets_the_list_of_sent_events(snowplow_collector: LocalCollector) -> None:
    received: List[List[Dict[str, Any]]] = []
    emitter = Emitter(snowplow_collector.endpoint, batch_size=2, on_success=received.append)
    emitter.input(event(se_va=1))
    emitter.input(event())

    assert len(received) == 1
    assert len(received[0]) == 2
    assert received[0][0]["se_va"] == "1"
    assert "stm" in received[0][0]


def test_on_failure_gets_success_count_and_failed_events_and_400_is_not_retried(
    snowplow_collector: LocalCollector,
) -> None:
    failures: List[Tuple[int, int]] = []
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=2,
        on_failure=lambda count, events: failures.append((count, len(events))),
    )
    snowplow_collector.fail_next(1, status=400)
    emitter.input(event())
    emitter.input(event())

    assert failures == [(0, 2)]
    assert emitter.event_store.size() == 0
    assert not emitter.retry_timer.is_active()
    assert emitter.stats().failed == 2


def test_retryable_failure_is_retried_after_backoff(snowplow_collector: LocalCollector) -> None:
    emitter = Emitter(snowplow_collector.endpoint, batch_size=2, max_retry_delay_seconds=1)
    snowplow_collector.fail_next(1, status=503)
    sent = [event(), event()]
    for payload in sent:
        emitter.input(payload)

    assert emitter.retry_timer.is_active()
    assert snowplow_collector.wait_for(2, timeout=5)
    assert sorted(delivered_ids(snowplow_collector)) == sorted(p["eid"] for p in sent)
    assert emitter.stats().retried == 2


def test_custom_retry_codes_override_the_defaults(snowplow_collector: LocalCollector) -> None:
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=1,
        max_retry_delay_seconds=1,
        custom_retry_codes={400: True, 500: False},
    )
    snowplow_collector.fail_next(1, status=400)
    retried = event()
    emitter.input(retried)
    assert snowplow_collector.wait_for(1, timeout=5)
    assert delivered_ids(snowplow_collector) == [retried["eid"]]

    snowplow_collector.reset()
    snowplow_collector.fail_next(1, status=500)
    emitter.input(event())
    assert emitter.event_store.size() == 0
    assert not emitter.retry_timer.is_active()


def test_get_retry_decision_is_made_per_request(snowplow_collector: LocalCollector) -> None:
    emitter = Emitter(snowplow_collector.endpoint, method="get", batch_size=3)
    snowplow_collector.fail_next(1, status=400)
    sent = [event() for _ in range(3)]
    for payload in sent:
        emitter.input(payload)

    assert snowplow_collector.wait_for(2, timeout=5)
    assert delivered_ids(snowplow_collector) == [p["eid"] for p in sent[1:]]
    assert emitter.stats().failed == 1
    assert not emitter.retry_timer.is_active()


def test_flush_after_an_outage_packs_the_backlog_within_byte_limit(
    snowplow_collector: LocalCollector,
) -> None:
    store = InMemoryEventStore(emitters_module.logger, buffer_capacity=1000)
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=10,
        byte_limit=4000,
        event_store=store,
        max_retry_delay_seconds=60,
    )
    snowplow_collector.fail_next(1, status=503)
    sent = [event(se_la="x" * 100) for _ in range(60)]
    for payload in sent:
        emitter.input(payload)
    assert emitter.retry_timer.is_active()
    assert store.size() >= 50

    emitter.sync_flush()

    assert snowplow_collector.wait_for(60, timeout=5)
    good_requests = [r for r in snowplow_collector.requests() if r["status"] == 200]
    for request in good_requests:
        assert len(request["body"]) <= 4000
    # A backlog goes in fewer, fuller requests than batch_size would make.
    assert max(len(json.loads(r["body"])["data"]) for r in good_requests) > 10
    assert sorted(delivered_ids(snowplow_collector)) == sorted(p["eid"] for p in sent)


def test_a_backlog_is_sent_in_requests_of_up_to_1000_events_and_512_kib(
    snowplow_collector: LocalCollector,
) -> None:
    # (The emitter's start-up flush and this flush share the backlog.)
    small, small_ids = _prefilled_store(2500)
    Emitter(snowplow_collector.endpoint, batch_size=10, event_store=small).flush()
    assert snowplow_collector.wait_for(2500, timeout=10)
    counts = sorted(len(body["data"]) for body in post_bodies(snowplow_collector))
    assert counts == [500, 1000, 1000]
    assert sorted(delivered_ids(snowplow_collector)) == sorted(small_ids)

    snowplow_collector.reset()
    large, large_ids = _prefilled_store(600, se_la="x" * 2000)  # about 2.2 kB each
    Emitter(snowplow_collector.endpoint, batch_size=10, event_store=large).flush()
    assert snowplow_collector.wait_for(600, timeout=10)
    sizes = [len(request["body"]) for request in snowplow_collector.requests()]
    assert max(sizes) <= 512 * 1024 and len(sizes) <= 4
    assert sorted(delivered_ids(snowplow_collector)) == sorted(large_ids)


def test_request_timeout_is_finite_by_default() -> None:
    emitter = Emitter("collector.invalid")
    assert emitter.request_timeout == (5.0, 10.0)


def test_slow_collector_past_the_timeout_is_retried(snowplow_collector: LocalCollector) -> None:
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=1,
        request_timeout=0.3,
        max_retry_delay_seconds=1,
    )
    snowplow_collector.delay_next(1, seconds=1.0)
    sent = event()
    emitter.input(sent)

    assert emitter.retry_timer.is_active()
    assert snowplow_collector.wait_for(2, timeout=5)
    # The slow request was stored late, then retried: one duplicate is allowed here.
    assert set(delivered_ids(snowplow_collector)) == {sent["eid"]}


def test_session_is_used_for_requests(snowplow_collector: LocalCollector) -> None:
    class CountingSession(requests.Session):
        calls = 0

        def post(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            CountingSession.calls += 1
            return super().post(*args, **kwargs)

    emitter = Emitter(snowplow_collector.endpoint, batch_size=1, session=CountingSession())
    emitter.input(event())
    assert CountingSession.calls == 1
    assert snowplow_collector.wait_for(1, timeout=5)


def test_patched_requests_post_is_honoured_like_1_1_0(
    snowplow_collector: LocalCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: List[str] = []
    real_post = requests.post

    def spy(url: str, **kwargs: Any) -> requests.Response:
        calls.append(url)
        return real_post(url, **kwargs)

    monkeypatch.setattr(emitters_module.requests, "post", spy)
    emitter = Emitter(snowplow_collector.endpoint, batch_size=1)
    emitter.input(event())
    assert calls == [emitter.endpoint]
    assert snowplow_collector.wait_for(1, timeout=5)


def test_callback_exceptions_are_logged_and_do_not_reach_the_caller(
    snowplow_collector: LocalCollector,
) -> None:
    def boom(_: Any) -> None:
        raise RuntimeError("callback failed")

    emitter = Emitter(snowplow_collector.endpoint, batch_size=1, on_success=boom)
    emitter.input(event())
    emitter.input(event())
    assert snowplow_collector.wait_for(2, timeout=5)


def test_emitter_subclass_overriding_http_post_delivers(
    snowplow_collector: LocalCollector,
) -> None:
    """dbt's TimeoutEmitter pattern: override http_post, use endpoint and is_good_status_code."""

    class TimeoutEmitter(Emitter):
        def __init__(self, endpoint: str) -> None:
            super().__init__(endpoint, protocol="http", method="post", batch_size=3)
            self.disabled = False
            self.statuses: List[int] = []

        def http_post(self, payload: str) -> int:  # type: ignore[override]
            response = requests.post(
                self.endpoint,
                data=payload,
                headers={"content-type": "application/json; charset=utf-8"},
                timeout=5.0,
            )
            self.statuses.append(response.status_code)
            if not self.is_good_status_code(response.status_code):
                self.disabled = True
            return response.status_code

    host_port = snowplow_collector.endpoint.split("://", 1)[1]
    emitter = TimeoutEmitter(host_port)
    sent = [event() for _ in range(3)]
    for payload in sent:
        emitter.input(payload)

    assert emitter.statuses == [200]
    assert not emitter.disabled
    assert snowplow_collector.wait_for(3, timeout=5)
    assert delivered_ids(snowplow_collector) == [p["eid"] for p in sent]


def test_flush_timer_sends_partial_batches(snowplow_collector: LocalCollector) -> None:
    emitter = Emitter(snowplow_collector.endpoint, batch_size=100)
    emitter.set_flush_timer(0.1)
    try:
        emitter.input(event())
        assert snowplow_collector.wait_for(1, timeout=5)
        assert emitter.timer.is_active()
        assert not emitter.set_flush_timer(0.1)  # type: ignore[func-returns-value]
    finally:
        emitter.cancel_flush_timer()
    assert not emitter.timer.is_active()


def test_buffer_capacity_drops_newest_and_counts(snowplow_collector: LocalCollector) -> None:
    dropped: List[Tuple[int, str]] = []
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=50,
        buffer_capacity=3,
        on_drop=lambda events, reason: dropped.append((len(events), reason)),
    )
    assert emitter.batch_size == 3
    snowplow_collector.fail_next(1, status=503)
    for _ in range(3):
        emitter.input(event())
    # The flush failed: three events wait for the retry, the store is full.
    emitter.input(event())
    assert dropped == [(1, "buffer_full")]
    assert emitter.stats().dropped == 1


def test_async_emitter_tracking_call_does_not_wait_for_the_collector(
    snowplow_collector: LocalCollector,
) -> None:
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=5)
    snowplow_collector.delay_next(1, seconds=2.0)
    sent = [event() for _ in range(50)]
    for payload in sent:
        emitter.input(payload)
    # Every call returned while the first request was still held by the collector.
    assert snowplow_collector.summary()["total"] == 0
    report = emitter.force_flush(timeout=10)
    assert report.pending == 0
    assert sorted(delivered_ids(snowplow_collector)) == sorted(p["eid"] for p in sent)


def test_async_sync_flush_returns_against_a_failing_collector(
    snowplow_collector: LocalCollector,
) -> None:
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=5, max_retry_delay_seconds=30)
    snowplow_collector.fail_next(1000, status=500)
    for _ in range(5):
        emitter.input(event())
    emitter.sync_flush()
    emitter.sync_flush()
    # No hot loop: a couple of attempts, not thousands.
    assert len(snowplow_collector.requests()) <= 3
    assert emitter.stats().pending == 5
    snowplow_collector.clear_faults()
    report = emitter.shutdown(timeout=5)
    assert report.sent == 5


def test_async_worker_survives_a_raising_callback(snowplow_collector: LocalCollector) -> None:
    def boom(_: Any) -> None:
        raise RuntimeError("callback failed")

    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=1, on_success=boom)
    for _ in range(3):
        emitter.input(event())
    assert emitter.force_flush(timeout=5).pending == 0
    emitter.input(event())
    emitter.sync_flush()
    assert snowplow_collector.wait_for(4, timeout=5)


def test_async_emitter_delivers_from_many_threads_exactly_once(
    snowplow_collector: LocalCollector,
) -> None:
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=10, thread_count=4)
    sent: List[str] = []
    lock = threading.Lock()

    def track(count: int) -> None:
        for _ in range(count):
            payload = event()
            with lock:
                sent.append(payload["eid"])
            emitter.input(payload)

    threads = [threading.Thread(target=track, args=(100,)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    report = emitter.force_flush(timeout=10)
    assert report.pending == 0
    received = delivered_ids(snowplow_collector)
    assert len(received) == len(sent) == 1600
    assert set(received) == set(sent)


def test_shutdown_drops_and_counts_later_events(snowplow_collector: LocalCollector) -> None:
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=10)
    emitter.input(event())
    report = emitter.shutdown(timeout=5)
    assert report.sent == 1 and report.pending == 0
    emitter.input(event())
    assert emitter.stats().dropped == 1


def test_retry_policy_attempt_cap_gives_up_and_reports_failure(
    snowplow_collector: LocalCollector,
) -> None:
    failures: List[int] = []
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=1,
        on_failure=lambda count, events: failures.append(len(events)),
        retry_policy=RetryPolicy(max_delay=0.05, max_attempts=2),
    )
    snowplow_collector.fail_next(10, status=500)
    emitter.input(event())
    deadline = time.monotonic() + 5
    while emitter.stats().failed == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = emitter.stats()
    assert stats.failed == 1 and stats.pending == 0
    assert failures == [1, 1]


def _prefilled_store(count: int, **fields: Any) -> Tuple[InMemoryEventStore, List[str]]:
    """A store holding ``count`` events before the emitter exists (a backlog to send)."""
    store = InMemoryEventStore(emitters_module.logger, buffer_capacity=10_000)
    return store, fill(store, count, **fields)


def test_async_emitter_sends_a_backlog_over_two_connections_at_once(
    snowplow_collector: LocalCollector,
) -> None:
    # Both first requests are held 1 s: one after the other, they would arrive >= 1 s apart.
    snowplow_collector.delay_next(2, seconds=1.0)
    store, sent = _prefilled_store(2500)  # three packed requests: 1000, 1000, 500
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=10, event_store=store)
    assert emitter.force_flush(timeout=10).pending == 0
    requests_seen = snowplow_collector.requests()
    assert len(requests_seen) == 3
    assert abs(requests_seen[1]["timestamp"] - requests_seen[0]["timestamp"]) < 0.9
    assert sorted(delivered_ids(snowplow_collector)) == sorted(sent)


@pytest.mark.parametrize("thread_count", [1, 3])
def test_async_emitter_packs_a_backlog_with_any_thread_count(
    snowplow_collector: LocalCollector, thread_count: int
) -> None:
    store, sent = _prefilled_store(2500)
    emitter = AsyncEmitter(
        snowplow_collector.endpoint, batch_size=10, event_store=store, thread_count=thread_count
    )
    assert emitter.force_flush(timeout=20).pending == 0
    counts = [len(body["data"]) for body in post_bodies(snowplow_collector)]
    assert sum(counts) == 2500 and max(counts) <= 1000 and len(counts) <= 6
    assert sorted(delivered_ids(snowplow_collector)) == sorted(sent)


def test_async_emitter_callbacks_run_one_at_a_time_with_two_sending_threads(
    snowplow_collector: LocalCollector,
) -> None:
    running = [0]
    most = [0]
    succeeded: List[str] = []

    def on_success(events: PayloadDictList) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.02)
        succeeded.extend(e["eid"] for e in events)
        running[0] -= 1

    store, sent = _prefilled_store(100)
    emitter = AsyncEmitter(
        snowplow_collector.endpoint, batch_size=10, event_store=store, on_success=on_success
    )
    assert emitter.force_flush(timeout=10).pending == 0
    assert most[0] == 1
    assert sorted(succeeded) == sorted(sent)


def test_async_emitter_sends_while_the_caller_tracks_in_a_loop_that_never_blocks(
    snowplow_collector: LocalCollector,
) -> None:
    # A CPU-bound tracking loop releases the GIL only if the tracker does. Releasing it every
    # few milliseconds (os.urandom for event ids) restarted the switch-interval timer of the
    # waiting sender thread each time, so nothing was sent until the loop ended.
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=10, buffer_capacity=100_000)
    tracker = Tracker("ns", emitter)
    deadline = time.monotonic() + 5.0
    tracked = 0
    sent_during_loop = 0
    while sent_during_loop < 100 and time.monotonic() < deadline:
        for _ in range(500):
            tracker.track(StructuredEvent("category", "action"))
        tracked += 500
        sent_during_loop = emitter.stats().sent
    assert sent_during_loop >= 100, f"{sent_during_loop} of {tracked} sent during the loop"
    assert emitter.force_flush(timeout=20).pending == 0
    assert snowplow_collector.wait_for(tracked, timeout=10)
    assert len(set(delivered_ids(snowplow_collector))) == tracked


def test_after_a_413_backlog_requests_stay_small_enough(
    snowplow_collector_factory: Callable[..., LocalCollector],
) -> None:
    collector = snowplow_collector_factory(max_body_bytes=60_000)
    emitter = Emitter(collector.endpoint, batch_size=10)
    sent = fill(emitter.event_store, 2500)  # about 200 bytes each: 1,000 make ~200 kB
    assert emitter.force_flush(timeout=20).pending == 0
    statuses = [request["status"] for request in collector.requests()]
    # The first packed request is split down to a size that fits (1000 -> 500 -> 250, and
    # its second half 500 -> 250); later requests start there instead of at 1,000 again.
    assert statuses.count(413) == 3
    assert all(len(r["body"]) <= 60_000 for r in collector.requests() if r["status"] == 200)
    assert sorted(delivered_ids(collector)) == sorted(sent)
