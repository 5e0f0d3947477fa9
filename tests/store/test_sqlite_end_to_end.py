"""End to end: emitters on a SQLiteEventStore deliver to the local collector, across kill -9."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snowplow_tracker import AsyncEmitter, Emitter, StructuredEvent, Tracker
from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.event_store import SQLiteEventStore
from tests.support.payloads import fill

CHILD = Path(__file__).with_name("_child.py")
REPO = Path(__file__).resolve().parents[2]


def wait_until_empty(store: SQLiteEventStore, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while store.size() and time.monotonic() < deadline:
        time.sleep(0.01)
    return store.size() == 0


def test_emitter_delivers_every_event_through_the_store(
    snowplow_collector: LocalCollector, tmp_path: Path
) -> None:
    store = SQLiteEventStore(tmp_path / "queue.db")
    emitter = Emitter(snowplow_collector.endpoint, event_store=store, batch_size=5)
    tracker = Tracker("durable", emitter)
    eids = [tracker.track(StructuredEvent(category="c", action=f"a{i}")) for i in range(23)]
    emitter.flush()
    assert snowplow_collector.wait_for(23, timeout=10)
    assert wait_until_empty(store)
    assert sorted(snowplow_collector.event_ids()) == sorted(eids)
    emitter.shutdown(timeout=1)
    store.close()


@pytest.mark.parametrize("emitter_class", [Emitter, AsyncEmitter])
def test_leftovers_arrive_once_when_the_app_flushes_during_the_startup_send(
    snowplow_collector: LocalCollector, tmp_path: Path, emitter_class: type
) -> None:
    """A new emitter sends what an earlier run left in the store from a startup thread; a
    ``sync_flush()`` at once races that thread. It returns with every event delivered, and
    no event is sent twice."""
    path = tmp_path / "queue.db"
    for attempt in range(5):
        snowplow_collector.reset()
        earlier = SQLiteEventStore(path)
        eids = fill(earlier, 57)
        earlier.close()

        store = SQLiteEventStore(path)
        emitter = emitter_class(snowplow_collector.endpoint, event_store=store, batch_size=10)
        emitter.sync_flush()
        assert sorted(snowplow_collector.event_ids()) == sorted(eids), attempt
        time.sleep(0.2)  # a duplicate would be a request still on its way
        assert sorted(snowplow_collector.event_ids()) == sorted(eids), attempt
        assert store.size() == 0
        emitter.shutdown(timeout=1)
        store.close()


@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_events_tracked_before_kill9_are_delivered_by_the_next_process(
    snowplow_collector: LocalCollector, tmp_path: Path
) -> None:
    path = tmp_path / "queue.db"
    args = {"path": str(path), "n": 15, "endpoint": "http://127.0.0.1:9"}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "track", json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if readable else ""
        if not line.startswith("ready "):
            proc.kill()
            pytest.fail(f"child failed ({line!r}): {proc.communicate(timeout=10)[1]}")
        tracked = json.loads(line[len("ready ") :])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)

    store = SQLiteEventStore(path)  # the next incarnation of the application
    assert store.size() == 15
    emitter = Emitter(snowplow_collector.endpoint, event_store=store)
    emitter.flush()
    assert snowplow_collector.wait_for(15, timeout=10)
    assert wait_until_empty(store)  # deleted once the collector's answer is in
    assert sorted(snowplow_collector.event_ids()) == sorted(tracked)
    emitter.shutdown(timeout=1)
    store.close()
