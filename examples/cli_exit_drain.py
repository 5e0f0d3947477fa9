"""A short-lived command-line program: events buffered at exit are still sent.

Run: python examples/cli_exit_drain.py

snowplow-tracker 1.1.0 lost the events still buffered when a script ended. Here every
emitter is drained when the interpreter exits, within ``exit_timeout`` seconds (default 2;
0 turns the drain off). The script plays two roles:

* ``python examples/cli_exit_drain.py`` (no arguments) starts a local collector, runs the
  "CLI" below in a separate process, and checks what arrived once that process has exited.
* ``... run ENDPOINT``: the CLI. It tracks a few events with a batch size larger than the
  number of events, so nothing has been sent when ``main`` returns, and never flushes.

Calling ``Snowplow.shutdown(timeout)`` (or ``tracker.shutdown``) at the end of ``main`` is
better still: it returns a report and does not depend on a normal interpreter exit. The
drain does not run when a process ends with ``os._exit()`` or is killed.
The last line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json
import subprocess
import sys

from snowplow_tracker import EmitterConfiguration, Snowplow, StructuredEvent


def cli(endpoint: str) -> None:
    """The short-lived program: track, print, return. No flush, no shutdown."""
    tracker = Snowplow.create_tracker(
        namespace="cli",
        endpoint=endpoint,
        app_id="cli-demo",
        emitter_config=EmitterConfiguration(
            asynchronous=True,
            batch_size=50,  # more than we track: nothing is sent before exit
            exit_timeout=5,  # the exit drain may take up to 5 seconds
        ),
    )
    event_ids = [
        tracker.track(StructuredEvent(category="cli", action="command", label=f"step-{n}"))
        for n in range(20)
    ]
    print(json.dumps({"tracked_event_ids": event_ids}), flush=True)
    # main returns; the interpreter exits; the exit drain sends the 20 events.


def demo() -> None:
    from snowplow_tracker.collector import LocalCollector

    with LocalCollector() as collector:
        completed = subprocess.run(
            [sys.executable, __file__, "run", collector.endpoint],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        tracked = json.loads(completed.stdout.strip().splitlines()[-1])["tracked_event_ids"]
        # The child has exited: whatever arrived was sent by its exit drain.
        arrived = collector.event_ids()
        print(
            f"The CLI tracked {len(tracked)} events and exited with code "
            f"{completed.returncode}; the collector has {len(arrived)}: {collector.summary()}"
        )
        result = {
            "example": "cli_exit_drain",
            "exit_code": completed.returncode,
            "tracked_event_ids": tracked,
            "arrived_event_ids": arrived,
            "requests": len(collector.requests()),
            **collector.summary(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        cli(sys.argv[2])
    else:
        demo()
