"""Emitters on a SQLiteEventStore: configuration, accounting, drops, block policy, shutdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from snowplow_tracker import EmitterConfiguration, Snowplow, StructuredEvent
from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.emitters import AsyncEmitter, Emitter
from snowplow_tracker.event_store import SQLiteEventStore
from snowplow_tracker.retry import RetryPolicy
from tests.support.payloads import event, fill


def delivered_ids(collector: LocalCollector) -> List[str]:
    return [good["event"]["event_id"] for good in collector.good()]


@pytest.fixture
def registry() -> Iterator[None]:
    Snowplow.reset()
    yield
    Snowplow.reset()


@pytest.mark.parametrize("asynchronous", [False, True])
def test_sqlite_store_through_emitter_configuration_and_tracker_shutdown(
    snowplow_collector: LocalCollector, tmp_path: Path, registry: None, asynchronous: bool
) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    config = EmitterConfiguration(batch_size=5, event_store=store, asynchronous=asynchronous)
    tracker = Snowplow.create_tracker("durable", snowplow_collector.endpoint, emitter_config=config)
    emitter = tracker.emitters[0]
    assert emitter.event_store is store
    ids = [tracker.track(StructuredEvent(category="c", action=f"a{i}")) for i in range(12)]
    tracker.shutdown(timeout=5)

    assert sorted(delivered_ids(snowplow_collector)) == sorted(ids)
    assert store.size() == 0
    stats = emitter.stats()
    assert stats.sent == 12 and stats.pending == 0


def test_pending_counts_events_in_flight_once(
    snowplow_collector: LocalCollector, tmp_path: Path
) -> None:
    snowplow_collector.delay_next(1, seconds=1.0)
    store = SQLiteEventStore(tmp_path / "events.db")
    emitter = AsyncEmitter(snowplow_collector.endpoint, batch_size=5, event_store=store)
    for _ in range(5):
        emitter.input(event())
    assert snowplow_collector.wait_for_requests(1, timeout=5)
    assert store.size() == 5  # the store still holds the leased rows
    assert emitter.stats().pending == 5  # ... and the emitter counts them once
    assert emitter.force_flush(timeout=5).pending == 0
    assert emitter.stats().pending == 0


def test_store_drops_are_counted_and_reported_by_the_emitter(
    snowplow_collector: LocalCollector, tmp_path: Path
) -> None:
    snowplow_collector.fail_next(10**6, status=503, headers={"Retry-After": "60"})
    dropped: List[Tuple[int, str]] = []
    store = SQLiteEventStore(tmp_path / "events.db", max_events=3)
    emitter = Emitter(
        snowplow_collector.endpoint,
        batch_size=10,
        event_store=store,
        on_drop=lambda events, reason: dropped.append((len(events), reason)),
    )
    for _ in range(5):
        emitter.input(event())
    assert dropped == [(1, "buffer_full"), (1, "buffer_full")]
    stats = emitter.stats()
    assert stats.dropped == 2 and stats.accepted == 3 and stats.pending == 3


def test_block_policy_applies_to_a_sqlite_store(
    snowplow_collector: LocalCollector, tmp_path: Path
) -> None:
    snowplow_collector.delay_next(2, seconds=0.2)
    store = SQLiteEventStore(tmp_path / "events.db", max_events=4)
    emitter = AsyncEmitter(
        snowplow_collector.endpoint,
        batch_size=4,
        event_store=store,
        overflow_policy="block",
        block_timeout=5,
        retry_policy=RetryPolicy(max_delay=0.1),
    )
    sent = [event() for _ in range(20)]
    for payload in sent:
        emitter.input(payload)
    report = emitter.force_flush(timeout=10)
    assert report.pending == 0
    assert emitter.stats().dropped == 0
    assert sorted(delivered_ids(snowplow_collector)) == sorted(p["eid"] for p in sent)


@pytest.mark.parametrize("cls", [Emitter, AsyncEmitter])
def test_flush_timer_batches_by_time(snowplow_collector: LocalCollector, cls: type) -> None:
    emitter = cls(snowplow_collector.endpoint, batch_size=100)
    emitter.set_flush_timer(0.1)
    sent = [event() for _ in range(3)]
    for payload in sent:
        emitter.input(payload)
    assert snowplow_collector.wait_for(3, timeout=5)
    assert sorted(delivered_ids(snowplow_collector)) == sorted(p["eid"] for p in sent)
    emitter.cancel_flush_timer()
    assert not emitter.timer.is_active()


def test_a_sqlite_backlog_is_sent_in_packed_requests(
    snowplow_collector: LocalCollector, tmp_path: Path
) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    sent = fill(store, 2500)
    emitter = Emitter(snowplow_collector.endpoint, batch_size=10, event_store=store)
    assert emitter.force_flush(timeout=20).pending == 0
    assert snowplow_collector.wait_for(2500, timeout=10)
    bodies = [json.loads(request["body"]) for request in snowplow_collector.requests()]
    counts = sorted(len(body["data"]) for body in bodies)
    assert counts == [500, 1000, 1000]
    assert sorted(delivered_ids(snowplow_collector)) == sorted(sent)
