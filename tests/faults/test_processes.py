"""Process faults: kill -9 with a durable store, exit without flush, offline exit, fork.

Each scenario runs in a child interpreter (a script written to ``tmp_path``) against the
local collector running in the test process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.emitters import Emitter
from snowplow_tracker.event_store import SQLiteEventStore
from tests.faults.helpers import (
    Child,
    blackhole,
    delivered_ids,
    duplicates,
    free_port,
    post_ids,
    wait_until,
    write_script,
)

CHILD = """
import json
import os
import sys
import time
import uuid

from snowplow_tracker.emitters import AsyncEmitter, Emitter
from snowplow_tracker.event_store import SQLiteEventStore
from snowplow_tracker.retry import RetryPolicy

config = json.loads(sys.argv[1])


def event():
    return {
        "e": "se", "se_ca": "cat", "se_ac": "act", "p": "srv",
        "eid": str(uuid.uuid4()), "dtm": int(time.time() * 1000), "tv": "py-test", "tna": "ns",
    }


def track(emitter, count):
    ids = []
    for _ in range(count):
        payload = event()
        emitter.input(payload)
        ids.append(payload["eid"])
        print("EID", payload["eid"], flush=True)
    return ids


store = SQLiteEventStore(config["store"]) if config.get("store") else None
cls = AsyncEmitter if config["kind"] == "AsyncEmitter" else Emitter
if config.get("stuck_transport"):
    base = cls

    class Stuck(base):
        def http_post(self, data):  # a transport override that ignores every timeout
            time.sleep(30)
            return 200

    cls = Stuck
emitter = cls(
    config["endpoint"],
    method=config.get("method", "post"),
    batch_size=config.get("batch_size", 50),
    event_store=store,
    retry_policy=RetryPolicy(max_delay=0.2),
    exit_timeout=config.get("exit_timeout", 2.0),
    **({"request_timeout": config["request_timeout"]} if "request_timeout" in config else {}),
)

if config["mode"] == "kill":
    track(emitter, config["count"])
    print("READY", flush=True)
    time.sleep(60)

elif config["mode"] == "exit":
    track(emitter, config["count"])
    if config.get("drop_reference"):
        import gc

        del emitter, store
        gc.collect()
    print("END", flush=True)
    # returns without flushing: the exit drain sends what is buffered

elif config["mode"] == "fork":
    warm = track(emitter, 1)
    emitter.force_flush(timeout=5)  # threads and connections exist before the fork
    parent_ids = track(emitter, 5)
    pid = os.fork()
    if pid == 0:
        child_ids = track(emitter, 3)
        report = emitter.force_flush(timeout=5)
        print("CHILD", json.dumps({"ids": child_ids, "sent": report.sent,
                                   "pending": report.pending}), flush=True)
        os._exit(0)
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = "hung"
    report = emitter.force_flush(timeout=5)
    print("PARENT", json.dumps({"warm": warm, "ids": parent_ids, "sent": report.sent,
                                "pending": report.pending, "child_status": status}), flush=True)
    os._exit(0)
"""


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    return write_script(tmp_path, "child.py", CHILD)


def run_child(script: Path, **config: Any) -> Child:
    return Child(script, json.dumps(config))


def eids_until(child: Child, marker: str, timeout: float = 15.0) -> List[str]:
    """Event ids the child printed before the ``marker`` line."""
    ids: List[str] = []
    deadline = time.monotonic() + timeout
    while True:
        line = child.line("", timeout=max(0.0, deadline - time.monotonic()))
        assert line is not None, f"child ended before {marker}: {child.stderr()}"
        if line.startswith("EID "):
            ids.append(line[4:])
        elif line.startswith(marker):
            return ids


# ---------------------------------------------------------------------------------- kill -9


def test_kill_9_then_restart_delivers_what_was_tracked(
    snowplow_collector: LocalCollector, child_script: Path, tmp_path: Path, kind: str
) -> None:
    """Collector unreachable while the child runs: every event is still in the file."""
    path = str(tmp_path / "events.db")
    child = run_child(
        child_script,
        mode="kill",
        kind=kind,
        endpoint=f"http://127.0.0.1:{free_port()}",
        store=path,
        batch_size=5,
        count=23,
    )
    try:
        tracked = eids_until(child, "READY")
    finally:
        child.kill()
    assert len(tracked) == 23

    # A new emitter on the same file sends the leftovers without any new event.
    Emitter(snowplow_collector.endpoint, event_store=SQLiteEventStore(path))
    assert snowplow_collector.wait_for(23, timeout=10, good=True)
    received = delivered_ids(snowplow_collector)
    assert sorted(received) == sorted(tracked)


def test_kill_9_during_requests_duplicates_only_what_was_in_flight(
    snowplow_collector: LocalCollector, child_script: Path, tmp_path: Path
) -> None:
    path = str(tmp_path / "events.db")
    snowplow_collector.delay_next(1, seconds=2.0)
    child = run_child(
        child_script,
        mode="kill",
        kind="AsyncEmitter",
        endpoint=snowplow_collector.endpoint,
        store=path,
        batch_size=5,
        count=23,
    )
    try:
        tracked = eids_until(child, "READY")
        assert snowplow_collector.wait_for_requests(1, timeout=5)
    finally:
        child.kill()
    in_flight = {eid for r in snowplow_collector.requests() for eid in post_ids(r)}
    assert in_flight and in_flight <= set(tracked)

    snowplow_collector.clear_faults()
    Emitter(snowplow_collector.endpoint, event_store=SQLiteEventStore(path))
    assert wait_until(lambda: set(delivered_ids(snowplow_collector)) >= set(tracked), 10)
    # The delayed request is stored when its delay ends, after the restart resent it.
    assert wait_until(
        lambda: len(delivered_ids(snowplow_collector)) >= len(tracked) + len(in_flight), 5
    )
    received = delivered_ids(snowplow_collector)
    assert set(received) == set(tracked)
    assert duplicates(received) <= in_flight
    assert len(received) == len(tracked) + len(duplicates(received))


# ---------------------------------------------------------------------------------- exit


def test_exit_without_flush_delivers_everything(
    snowplow_collector: LocalCollector, child_script: Path, kind: str, method: str
) -> None:
    child = run_child(
        child_script,
        mode="exit",
        kind=kind,
        method=method,
        endpoint=snowplow_collector.endpoint,
        batch_size=50,
        count=7,
    )
    tracked = eids_until(child, "END")
    assert child.wait(15) == 0, child.stderr()
    assert sorted(delivered_ids(snowplow_collector)) == sorted(tracked)


def test_exit_drain_reaches_an_emitter_the_program_no_longer_references(
    snowplow_collector: LocalCollector, child_script: Path, kind: str
) -> None:
    child = run_child(
        child_script,
        mode="exit",
        kind=kind,
        endpoint=snowplow_collector.endpoint,
        batch_size=50,
        count=4,
        drop_reference=True,
    )
    tracked = eids_until(child, "END")
    assert child.wait(15) == 0, child.stderr()
    assert sorted(delivered_ids(snowplow_collector)) == sorted(tracked)


@pytest.mark.parametrize("collector_state", ["unresponsive", "refusing", "stuck_transport"])
def test_offline_exit_ends_within_the_exit_timeout(
    child_script: Path, kind: str, collector_state: str
) -> None:
    if collector_state == "stuck_transport" and sys.version_info[:2] == (3, 12):
        pytest.skip("Python 3.12 cannot start the exit drain's helper thread")
    hole = blackhole()
    try:
        if collector_state == "unresponsive":
            endpoint = f"http://127.0.0.1:{hole.getsockname()[1]}"
        else:
            endpoint = f"http://127.0.0.1:{free_port()}"
        child = run_child(
            child_script,
            mode="exit",
            kind=kind,
            endpoint=endpoint,
            batch_size=50,
            count=20,
            exit_timeout=1.0,
            stuck_transport=collector_state == "stuck_transport",
        )  # default request timeout (5, 10): the drain deadline must cut it
        eids_until(child, "END")
        ended = time.monotonic()
        assert child.wait(15) == 0
        assert time.monotonic() - ended < 1.0 + 2.0  # exit_timeout plus generous slack
    finally:
        hole.close()


def test_exit_timeout_zero_disables_the_drain(
    snowplow_collector: LocalCollector, child_script: Path, kind: str
) -> None:
    child = run_child(
        child_script,
        mode="exit",
        kind=kind,
        endpoint=snowplow_collector.endpoint,
        batch_size=50,
        count=3,
        exit_timeout=0,
    )
    eids_until(child, "END")
    assert child.wait(15) == 0
    assert snowplow_collector.requests() == []


def test_offline_exit_with_a_durable_store_keeps_events_for_the_next_run(
    snowplow_collector: LocalCollector, child_script: Path, tmp_path: Path, kind: str
) -> None:
    path = str(tmp_path / "events.db")
    child = run_child(
        child_script,
        mode="exit",
        kind=kind,
        endpoint=f"http://127.0.0.1:{free_port()}",
        store=path,
        batch_size=50,
        count=9,
        exit_timeout=0.5,
    )
    tracked = eids_until(child, "END")
    assert child.wait(15) == 0
    Emitter(snowplow_collector.endpoint, event_store=SQLiteEventStore(path))
    assert snowplow_collector.wait_for(9, timeout=10, good=True)
    assert sorted(delivered_ids(snowplow_collector)) == sorted(tracked)


def test_processes_sharing_one_durable_store_deliver_every_event_once(
    snowplow_collector: LocalCollector, child_script: Path, tmp_path: Path, kind: str
) -> None:
    path = str(tmp_path / "shared.db")
    children = [
        run_child(
            child_script,
            mode="exit",
            kind=kind,
            endpoint=snowplow_collector.endpoint,
            store=path,
            batch_size=7,
            count=30,
        )
        for _ in range(3)
    ]
    tracked = [eid for child in children for eid in eids_until(child, "END")]
    for child in children:
        assert child.wait(15) == 0, child.stderr()
    assert len(tracked) == 90
    received = delivered_ids(snowplow_collector)
    assert sorted(received) == sorted(tracked)
    assert SQLiteEventStore(path).size() == 0


# ---------------------------------------------------------------------------------- fork


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_fork_each_process_delivers_its_own_events_once(
    snowplow_collector: LocalCollector, child_script: Path, tmp_path: Path, kind: str, store: str
) -> None:
    child = run_child(
        child_script,
        mode="fork",
        kind=kind,
        endpoint=snowplow_collector.endpoint,
        store=str(tmp_path / "events.db") if store == "sqlite" else None,
        batch_size=50,
    )
    forked = child.line("CHILD ", timeout=15)
    parent = child.line("PARENT ", timeout=15)
    assert child.wait(15) == 0, child.stderr()
    assert forked is not None and parent is not None
    forked_info: Dict[str, Any] = json.loads(forked)
    parent_info: Dict[str, Any] = json.loads(parent)
    assert parent_info["child_status"] == 0  # the child ended by itself: no flush hung
    assert forked_info["pending"] == 0 and parent_info["pending"] == 0

    expected = parent_info["warm"] + parent_info["ids"] + forked_info["ids"]
    received = delivered_ids(snowplow_collector)
    assert sorted(received) == sorted(expected)  # every event exactly once
    if store == "memory":
        # The parent's buffered events are the parent's: the child sent only its own.
        assert forked_info["sent"] == 3 and parent_info["sent"] == 5
