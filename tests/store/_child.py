"""Child process for the store tests: ``python _child.py COMMAND JSON_ARGS``.

Commands:
  hold    add ``n`` events, lease ``hold`` of them, print "ready", then sleep (to be killed).
  worker  one participant of the multi-process test; writes a JSON report to ``out``.
  track   track ``n`` events with a Tracker whose Emitter never reaches its collector,
          print "ready" and their eids as JSON, then sleep (to be killed).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.store._load import load_store_module

SQLiteEventStore = load_store_module().SQLiteEventStore


def hold(args: dict) -> None:
    store = SQLiteEventStore(args["path"], lease_seconds=args.get("lease_seconds", 60.0))
    for i in range(args["n"]):
        if not store.add_event({"eid": f"{args['prefix']}-{i}", "i": str(i)}):
            print("add failed", flush=True)
            sys.exit(3)
    if args.get("hold"):
        batch = store.get_events_batch(limit=args["hold"])
        assert len(batch) == args["hold"], len(batch)
    print("ready", flush=True)
    time.sleep(120)


def worker(args: dict) -> None:
    wid, n_add, n_workers = args["wid"], args["n_add"], args["n_workers"]
    done_dir = Path(args["done_dir"])
    store = SQLiteEventStore(args["path"], lease_seconds=30.0, max_events=1_000_000)
    rng = random.Random(args["seed"])
    handed, deleted, retried, failed_adds = [], [], [], 0

    def consume() -> int:
        batch = store.get_events_batch(limit=rng.randint(1, 25))
        if not batch:
            return 0
        handed.extend(e["eid"] for e in batch)
        k = rng.randint(0, len(batch)) if rng.random() < args["retry_prob"] else 0
        retry, done = batch[:k], batch[k:]
        if retry:
            store.cleanup(retry, True)
            retried.extend(e["eid"] for e in retry)
        store.cleanup(done, False)
        deleted.extend(e["eid"] for e in done)
        return len(batch)

    added = 0
    deadline = time.time() + args.get("seconds", 60.0)
    while added < n_add and time.time() < deadline:
        for _ in range(rng.randint(1, 12)):
            if added < n_add:
                if not store.add_event({"eid": f"w{wid}-{added}", "w": str(wid)}):
                    failed_adds += 1
                added += 1
        consume()
    (done_dir / str(wid)).touch()
    finished = False
    while time.time() < deadline:
        if consume():
            continue
        if len(os.listdir(done_dir)) == n_workers and store.size() == 0:
            finished = True
            break
        time.sleep(0.002)
    report = {
        "handed": handed,
        "deleted": deleted,
        "retried": retried,
        "failed_adds": failed_adds,
        "added": added,
        "finished": finished,
    }
    Path(args["out"]).write_text(json.dumps(report))


def track(args: dict) -> None:
    from snowplow_tracker import Emitter, StructuredEvent, Tracker

    store = SQLiteEventStore(args["path"])
    # batch_size above n: nothing is sent before the kill; the events are only in the file.
    emitter = Emitter(args["endpoint"], event_store=store, batch_size=args["n"] + 1)
    tracker = Tracker("durable", emitter)
    eids = [tracker.track(StructuredEvent(category="c", action=f"a{i}")) for i in range(args["n"])]
    print("ready " + json.dumps(eids), flush=True)
    time.sleep(120)


if __name__ == "__main__":
    {"hold": hold, "worker": worker, "track": track}[sys.argv[1]](json.loads(sys.argv[2]))
