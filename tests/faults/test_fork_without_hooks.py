"""Fork that bypasses Python's fork hooks (uWSGI's default mode, ``fork()`` from C).

The script forks with libc's ``fork()`` called through ``ctypes.PyDLL``: the GIL stays held
by the forking thread (which exists in the child), and neither ``os.register_at_fork`` hooks
nor ``PyOS_AfterFork_Child`` run. So the child inherits every lock as it was: the script
makes a thread hold the emitter's locks, its store's lock, its queue's mutex, its counters'
lock, ``_lifecycle``'s locks (and logging's module lock) while the fork happens. The child must
bring the emitter back to a clean state without acquiring any of them.

Each scenario runs in a child interpreter against the local collector of the test process;
``waitpid`` on the forked process is bounded and a hang is reported (the process killed).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict

import pytest

from snowplow_tracker.collector import LocalCollector
from tests.faults.helpers import Child, delivered_ids, duplicates, wait_until, write_script

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="raw libc fork() simulation is Linux-only"
)

SCRIPT = """
import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid

from snowplow_tracker import _lifecycle
from snowplow_tracker.emitters import AsyncEmitter, Emitter
from snowplow_tracker.event_store import SQLiteEventStore

config = json.loads(sys.argv[1])


def event(tag):
    return {
        "e": "se", "se_ca": tag, "se_ac": "act", "p": "srv",
        "eid": str(uuid.uuid4()), "dtm": int(time.time() * 1000), "tv": "py-test", "tna": "ns",
    }


def track(emitter, count, tag):
    ids = []
    for _ in range(count):
        payload = event(tag)
        emitter.input(payload)
        ids.append(payload["eid"])
    return ids


kind = AsyncEmitter if config["kind"] == "async" else Emitter
store = None
if config.get("sqlite"):
    store = SQLiteEventStore(config["sqlite"], logger=logging.getLogger("snowplow_tracker.t"))
emitter = kind(config["endpoint"], batch_size=10, event_store=store, exit_timeout=3)
sent_before = track(emitter, 2, "sent-before")
emitter.force_flush(timeout=5)  # threads, session and pooled connection exist now
buffered = track(emitter, 3, "buffered")  # stay buffered in the parent over the fork

locks = [emitter.lock, emitter._take_lock, emitter._space, emitter._counters._lock,
         _lifecycle._lock, _lifecycle._pin_lock]
if config["child"] == "track":
    # Held logging locks also hang the interpreter's own exit (logging.shutdown), with or
    # without this library, so only the tracking scenario holds one.
    locks.append(logging._lock)
if store is None:
    locks.append(emitter.event_store._lock)
if kind is AsyncEmitter:
    locks += [emitter._wake, emitter._start_lock, emitter.queue.mutex]
held = threading.Event()
release = threading.Event()


def hold():
    for lock in locks:
        lock.acquire()
    held.set()
    release.wait()
    for lock in reversed(locks):
        lock.release()


holder = threading.Thread(target=hold, daemon=True)
holder.start()
held.wait()
libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held across the call
pid = libc.fork()
if pid == 0:
    # Child: no hooks ran; every lock above is held by a thread that does not exist here.
    if config["child"] == "track":
        mine = track(emitter, 2, "child")
        report = emitter.force_flush(timeout=5)
        print("CHILD " + json.dumps({"ids": mine, "sent": report.sent}), flush=True)
        os._exit(0)
    # "exit": the child never tracks; its exit drain must neither hang nor send the
    # parent's events.
    print("CHILD " + json.dumps({"ids": [], "sent": 0}), flush=True)
    sys.exit(0)
release.set()
deadline = time.monotonic() + float(config["wait"])
status = None
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.02)
else:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    status = "hang"
report = emitter.force_flush(timeout=5)
print("PARENT " + json.dumps({
    "sent_before": sent_before, "buffered": buffered, "sent": report.sent,
    "child_status": status,
}), flush=True)
emitter.shutdown(timeout=2)
"""


def _run(tmp_path: Any, collector: LocalCollector, **config: Any) -> Dict[str, Any]:
    script = write_script(tmp_path, "fork_without_hooks.py", SCRIPT)
    config = dict(config, endpoint=collector.endpoint, wait=10)
    child = Child(script, json.dumps(config))
    try:
        forked = child.line("CHILD ", timeout=15)
        parent = child.line("PARENT ", timeout=20)
        assert child.wait(timeout=15) == 0, child.stderr()
    finally:
        child.kill()
    assert parent is not None, child.stderr()
    info: Dict[str, Any] = json.loads(parent)
    info["child"] = json.loads(forked) if forked is not None else None
    return info


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_child_resets_without_inherited_locks_and_each_process_sends_its_own(
    tmp_path: Any, kind: str
) -> None:
    with LocalCollector() as collector:
        info = _run(tmp_path, collector, kind=kind, child="track")
        assert info["child_status"] == 0, info  # no hang: the child exited by itself
        child = info["child"]
        assert child is not None and child["sent"] == 2, info
        assert info["sent"] == 3, info  # the parent sends its buffered events
        expected = info["sent_before"] + info["buffered"] + child["ids"]
        assert wait_until(lambda: len(delivered_ids(collector)) >= len(expected), 5)
        ids = delivered_ids(collector)
        assert sorted(ids) == sorted(expected)  # each event once, none twice
        assert not duplicates(ids)


def test_child_exit_drain_does_not_hang_or_resend_parent_events(tmp_path: Any) -> None:
    with LocalCollector() as collector:
        info = _run(tmp_path, collector, kind="async", child="exit")
        assert info["child_status"] == 0, info
        expected = info["sent_before"] + info["buffered"]
        assert wait_until(lambda: len(delivered_ids(collector)) >= len(expected), 5)
        ids = delivered_ids(collector)
        assert sorted(ids) == sorted(expected)
        assert not duplicates(ids)


def test_sqlite_store_child_does_not_wait_on_inherited_locks(tmp_path: Any) -> None:
    with LocalCollector() as collector:
        db = str(tmp_path / "events.db")
        info = _run(tmp_path, collector, kind="async", child="track", sqlite=db)
        assert info["child_status"] == 0, info
        child = info["child"]
        assert child is not None
        # The file is shared: the parent's 3 unsent events may go with either process.
        expected = info["sent_before"] + info["buffered"] + child["ids"]
        assert wait_until(lambda: len(delivered_ids(collector)) >= len(expected), 5)
        ids = delivered_ids(collector)
        assert sorted(ids) == sorted(expected)
        assert not duplicates(ids)
