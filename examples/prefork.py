"""Pre-fork servers: a tracker created before ``fork()`` keeps working in every worker.

Run: python examples/prefork.py   (POSIX systems with ``fork``; Linux, macOS)

gunicorn (with ``--preload``), uWSGI and Celery's prefork pool create the application in
a master process and then fork worker processes. A tracker built at import time is
therefore shared by all of them. After a fork, each emitter in the child starts over with
an empty buffer, fresh locks and a fresh connection, and starts its own sender thread on
first use; the events buffered in the master stay with the master, so none is sent twice.

The script plays two roles:

* ``python examples/prefork.py`` (no arguments) starts a local collector, runs the
  "server" below in a separate process and checks what arrived.
* ``... serve ENDPOINT``: the server. The master creates a tracker and tracks two events
  (buffered, not sent yet), then forks three workers with ``multiprocessing``; each worker
  tracks three events and shuts its tracker down before it ends. Worker processes of
  ``multiprocessing`` end with ``os._exit()``, which skips the exit drain, so the explicit
  ``shutdown`` is needed there. Finally the master shuts down and sends its own two events.

The last line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from typing import List

from snowplow_tracker import EmitterConfiguration, Snowplow, StructuredEvent

WORKERS = 3
EVENTS_PER_WORKER = 3


def worker(number: int) -> None:
    """Runs in a forked child: the tracker inherited from the master just works."""
    tracker = Snowplow.get_tracker("app")
    assert tracker is not None
    for n in range(EVENTS_PER_WORKER):
        tracker.track(StructuredEvent(category="worker", action=f"w{number}", label=f"{n}"))
    # multiprocessing ends the child with os._exit(): shut down explicitly, as gunicorn's
    # worker_exit or Celery's worker_process_shutdown hooks would.
    Snowplow.shutdown(timeout=5)


def serve(endpoint: str) -> None:
    """The master process of a pre-fork server."""
    tracker = Snowplow.create_tracker(
        namespace="app",
        endpoint=endpoint,
        app_id="prefork-demo",
        emitter_config=EmitterConfiguration(asynchronous=True, batch_size=100),
    )
    # Buffered in the master when the workers are forked.
    tracker.track(StructuredEvent(category="master", action="boot"))
    tracker.track(StructuredEvent(category="master", action="ready"))

    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=worker, args=(n,)) for n in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    exit_codes = [process.exitcode for process in processes]
    tracker.shutdown(timeout=5)  # the master's own two events go out now
    print(json.dumps({"master_pid": os.getpid(), "worker_exit_codes": exit_codes}), flush=True)


def demo() -> None:
    from snowplow_tracker.collector import LocalCollector

    with LocalCollector() as collector:
        completed = subprocess.run(
            [sys.executable, __file__, "serve", collector.endpoint],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if completed.returncode != 0 or not completed.stdout.strip():
            raise SystemExit(f"the server failed:\n{completed.stderr}")
        server = json.loads(completed.stdout.strip().splitlines()[-1])
        expected = 2 + WORKERS * EVENTS_PER_WORKER
        collector.wait_for(expected, timeout=5)
        categories: List[str] = [good["event"]["se_category"] for good in collector.good()]
        print(
            f"{WORKERS} workers exited with {server['worker_exit_codes']}; the collector has "
            f"{collector.summary()} ({categories.count('master')} from the master), "
            f"duplicates: {collector.duplicate_event_ids()}"
        )
        result = {
            "example": "prefork",
            **collector.summary(),
            "expected": expected,
            "from_master": categories.count("master"),
            "from_workers": categories.count("worker"),
            "duplicate_event_ids": collector.duplicate_event_ids(),
            "worker_exit_codes": server["worker_exit_codes"],
        }
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        demo()
