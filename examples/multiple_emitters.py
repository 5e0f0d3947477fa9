"""One tracker, two emitters: every event goes to two collectors.

Run: python examples/multiple_emitters.py

A common setup: the production collector gets batched POST requests from a background
``AsyncEmitter``, and a second collector (an audit or staging pipeline) gets one GET
request per event from a synchronous ``Emitter``. The tracker hands each emitter its own
copy of every event, so both collectors receive the same event ids.
``tracker.shutdown(timeout)`` flushes and stops both emitters within one time budget.
The last line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json

from snowplow_tracker import AsyncEmitter, Emitter, PageView, StructuredEvent, Tracker
from snowplow_tracker.collector import LocalCollector


def main() -> None:
    with LocalCollector() as primary, LocalCollector() as audit:
        batched = AsyncEmitter(primary.endpoint, method="post", batch_size=10)
        per_event = Emitter(audit.endpoint, method="get")  # GET: batch_size defaults to 1
        tracker = Tracker("multi", emitters=[batched, per_event], app_id="two-pipelines")

        event_ids = [
            tracker.track(PageView(page_url="https://example.com/")),
            tracker.track(StructuredEvent(category="video", action="play")),
            tracker.track(StructuredEvent(category="video", action="pause")),
        ]
        # Flushes and stops both emitters; 5 seconds for all of them together.
        tracker.shutdown(timeout=5)

        primary.wait_for(3, timeout=5)
        audit.wait_for(3, timeout=5)
        for name, collector in (("primary", primary), ("audit", audit)):
            methods = sorted({request["method"] for request in collector.requests()})
            print(
                f"{name:<8} {collector.summary()} requests={len(collector.requests())} "
                f"methods={methods}"
            )
        result = {
            "example": "multiple_emitters",
            "tracked_event_ids": event_ids,
            "primary": {
                **primary.summary(),
                "event_ids": primary.event_ids(),
                "requests": [(r["method"], r["path"]) for r in primary.requests()],
            },
            "audit": {
                **audit.summary(),
                "event_ids": audit.event_ids(),
                "requests": [(r["method"], r["path"]) for r in audit.requests()],
            },
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
