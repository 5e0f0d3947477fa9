"""Events survive a crash: the durable SQLite event store.

Run: python examples/durable_store.py

The script plays three roles:

* ``python examples/durable_store.py`` (no arguments) starts a local collector, runs the
  two steps below as separate processes, and reports what arrived after each one.
* ``... track DB ENDPOINT``: tracks events into a ``SQLiteEventStore`` file, then dies
  with ``os._exit`` before anything is sent (no exit drain, no flush, no cleanup), like a
  process killed in the middle of its work.
* ``... send DB ENDPOINT``: a new process opens the same file. An ``AsyncEmitter`` whose
  store already holds events starts sending them as soon as it is created; ``shutdown``
  waits for the result.

The last line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict

from snowplow_tracker import AsyncEmitter, Emitter, StructuredEvent, Tracker
from snowplow_tracker.event_store import SQLiteEventStore


def track_then_crash(db_path: str, endpoint: str) -> None:
    """First process: events go into the file, then the process dies before sending."""
    store = SQLiteEventStore(db_path)
    # A large batch_size keeps the events buffered; a collector that is down would too.
    emitter = Emitter(endpoint, batch_size=100, event_store=store)
    tracker = Tracker("durable", emitters=emitter, app_id="durable-demo")
    event_ids = [
        tracker.track(StructuredEvent(category="job", action="step", value=step))
        for step in range(5)
    ]
    print(json.dumps({"tracked_event_ids": event_ids, "stored": store.size()}), flush=True)
    os._exit(1)  # a hard crash: atexit handlers (and the exit drain) do not run


def send_after_restart(db_path: str, endpoint: str) -> None:
    """Second process: the same file; what the first one left is sent now."""
    store = SQLiteEventStore(db_path)
    waiting = store.size()
    emitter = AsyncEmitter(endpoint, event_store=store)  # starts sending the leftovers
    Tracker("durable", emitters=emitter, app_id="durable-demo")
    emitter.shutdown(timeout=10)  # waits until they are sent (10 seconds at most)
    sent = emitter.stats().sent
    print(json.dumps({"found": waiting, "sent": sent, "left": store.size()}), flush=True)


def run_step(step: str, db_path: str, endpoint: str) -> Dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, step, db_path, endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if not completed.stdout.strip():
        raise SystemExit(f"step {step!r} printed nothing; stderr:\n{completed.stderr}")
    step_result: Dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    step_result["exit_code"] = completed.returncode
    return step_result


def demo() -> None:
    from snowplow_tracker.collector import LocalCollector

    with tempfile.TemporaryDirectory() as tmp, LocalCollector() as collector:
        db_path = os.path.join(tmp, "events.sqlite3")

        first = run_step("track", db_path, collector.endpoint)
        print(
            f"1st process tracked {len(first['tracked_event_ids'])} events, stored "
            f"{first['stored']}, then crashed (exit code {first['exit_code']})"
        )
        arrived_before = collector.summary()["total"]
        print(f"   events at the collector: {arrived_before}")

        second = run_step("send", db_path, collector.endpoint)
        collector.wait_for(len(first["tracked_event_ids"]), timeout=5)
        print(f"2nd process found {second['found']} events in the file and sent {second['sent']}")
        print(f"   events at the collector: {collector.summary()}")
        result = {
            "example": "durable_store",
            "first_exit_code": first["exit_code"],
            "tracked_event_ids": first["tracked_event_ids"],
            "arrived_before_restart": arrived_before,
            "found_after_restart": second["found"],
            "sent_after_restart": second["sent"],
            "left_in_store": second["left"],
            **collector.summary(),
            "arrived_event_ids": collector.event_ids(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "track":
        track_then_crash(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "send":
        send_after_restart(sys.argv[2], sys.argv[3])
    else:
        demo()
