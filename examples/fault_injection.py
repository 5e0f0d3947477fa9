"""See how the emitter reacts when the collector fails: retries, give-ups, callbacks.

Run: python examples/fault_injection.py

The local collector can be told to misbehave for the next requests (``fail_next``,
``delay_next``, ``drop_next``). This script uses it to show three outcomes:

1. A 503 with ``Retry-After: 1``: the events are kept, ``on_failure`` is called, and the
   emitter retries after the backoff (at least the second the collector asked for).
2. A 400: a status that is never retried by default; the events are given up
   (counted as ``failed``).
3. A retry policy with ``max_attempts=2`` against a collector that keeps answering 500:
   after two attempts the events are given up instead of being retried forever.

The last line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List

from snowplow_tracker import Emitter, StructuredEvent, Tracker
from snowplow_tracker.collector import LocalCollector
from snowplow_tracker.retry import RetryPolicy


def wait_until_settled(emitter: Emitter, timeout: float) -> None:
    """Wait until the emitter has nothing left to send (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while emitter.stats().pending and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> None:
    callbacks: List[str] = []

    def on_success(events: List[Dict[str, Any]]) -> None:
        callbacks.append(f"on_success: {len(events)} delivered")
        print(callbacks[-1])

    def on_failure(delivered: int, failed: List[Dict[str, Any]]) -> None:
        callbacks.append(f"on_failure: {delivered} delivered, {len(failed)} not")
        print(callbacks[-1])

    with LocalCollector() as collector:
        emitter = Emitter(
            collector.endpoint, batch_size=2, on_success=on_success, on_failure=on_failure
        )
        tracker = Tracker("faults", emitters=emitter)

        # 1. Temporary failure: retried after the backoff.
        collector.fail_next(1, status=503, headers={"Retry-After": "1"})
        started = time.monotonic()
        tracker.track(StructuredEvent(category="demo", action="retry", label="a"))
        tracker.track(StructuredEvent(category="demo", action="retry", label="b"))
        collector.wait_for(2, timeout=10)  # the retry timer sends them again
        retried_after = round(time.monotonic() - started, 1)
        wait_until_settled(emitter, timeout=5)
        print(f"case 1: delivered after {retried_after} s")

        # 2. A status that is not retried: the events are given up.
        collector.fail_next(1, status=400)
        tracker.track(StructuredEvent(category="demo", action="reject", label="c"))
        tracker.track(StructuredEvent(category="demo", action="reject", label="d"))
        first = emitter.stats()
        print(f"case 2: given up; counters so far: {first}")

        # 3. A retry policy that gives up after two attempts.
        capped = Emitter(
            collector.endpoint,
            batch_size=1,
            retry_policy=RetryPolicy(max_attempts=2, max_delay=0.2),
            on_failure=on_failure,
        )
        collector.fail_next(2, status=500)
        Tracker("capped", emitters=capped).track(StructuredEvent(category="demo", action="cap"))
        wait_until_settled(capped, timeout=5)
        second = capped.stats()
        print(f"case 3: given up after 2 attempts: {second}")

        result = {
            "example": "fault_injection",
            **collector.summary(),
            "statuses": [request["status"] for request in collector.requests()],
            "retried_after_seconds": retried_after,
            "first": {"sent": first.sent, "failed": first.failed, "retried": first.retried},
            "capped": {"sent": second.sent, "failed": second.failed, "retried": second.retried},
            "callbacks": callbacks,
        }
        tracker.shutdown(timeout=2)
        capped.shutdown(timeout=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
