"""Build a Tracker, an Emitter and a Subject by hand (the snowplow-tracker 1.1.0 way).

Run: python examples/manual_setup.py

Shows the constructor parameters people use most: a synchronous ``Emitter`` with a batch
size, a request timeout and callbacks; a tracker-wide ``Subject``; an event-level subject
that overrides it for one event; a context entity; a true timestamp; then
``force_flush(timeout)``, which returns a delivery report, and ``stats()``.
The last line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List

from snowplow_tracker import (
    Emitter,
    PageView,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
)
from snowplow_tracker.collector import LocalCollector

# A context entity of our own. The collector validates it against this schema.
VISIT_SCHEMA = "iglu:com.example/visit/jsonschema/1-0-0"
VISIT_SCHEMA_DOCUMENT = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {"vendor": "com.example", "name": "visit", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {"campaign": {"type": "string"}},
    "required": ["campaign"],
}


def main() -> None:
    delivered: List[Dict[str, Any]] = []

    with LocalCollector() as collector:
        collector.add_schema(VISIT_SCHEMA, VISIT_SCHEMA_DOCUMENT)

        # The endpoint may carry a scheme; it wins over `protocol` (default "https").
        emitter = Emitter(
            collector.endpoint,
            method="post",
            batch_size=3,  # send once 3 events are buffered
            request_timeout=(2.0, 5.0),  # (connect, read) seconds for each request
            on_success=delivered.extend,  # receives the list of delivered event dicts
            on_failure=lambda sent, failed: print(f"{len(failed)} events failed"),
        )
        subject = Subject().set_platform("srv").set_user_id("user-42").set_lang("en")
        tracker = Tracker(
            namespace="manual",
            emitters=emitter,
            subject=subject,
            app_id="manual-setup",
            encode_base64=False,  # send JSON fields raw (co / ue_pr) instead of base64
        )

        campaign = SelfDescribingJson(VISIT_SCHEMA, {"campaign": "spring-sale"})
        tracker.track(PageView(page_url="https://shop.example.com/", context=[campaign]))
        tracker.track(StructuredEvent(category="shop", action="add", label="socks", value=2))
        # An event-level subject is merged over the tracker's subject. Every Subject starts
        # with platform "pc", so set the platform again if the tracker's should survive.
        guest = Subject().set_platform("srv").set_user_id("guest-7")
        an_hour_ago_ms = int(time.time() * 1000) - 3_600_000
        tracker.track(
            StructuredEvent(
                category="shop",
                action="view",
                event_subject=guest,
                true_timestamp=an_hour_ago_ms,  # when it really happened (ttm)
            )
        )
        # The third event reached batch_size, so those three went out in one request
        # from this thread. This one stays buffered until a flush:
        tracker.track(PageView(page_url="https://shop.example.com/checkout"))

        report = emitter.force_flush(timeout=5)
        print(f"force_flush: {report}")
        stats = emitter.stats()
        print(f"stats:       {stats}")

        collector.wait_for(4, timeout=5)
        for good in collector.good():
            event = good["event"]
            print(f"  {event['event']:<10} user_id={event['user_id']:<9} app_id={event['app_id']}")
        result = {
            "example": "manual_setup",
            **collector.summary(),
            "user_ids": [good["event"]["user_id"] for good in collector.good()],
            "true_timestamps": [good["event"]["true_tstamp"] for good in collector.good()],
            "requests": len(collector.requests()),
            "on_success_events": len(delivered),
            "report": {"sent": report.sent, "pending": report.pending, "complete": report.complete},
            "stats": {"accepted": stats.accepted, "sent": stats.sent, "requests": stats.requests},
        }
        tracker.shutdown(timeout=5)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
