"""Track a few events into the local collector and show what arrived.

Run: python examples/quickstart.py

It starts a LocalCollector on 127.0.0.1 (a free port), builds a tracker with the
``Snowplow.create_tracker`` one-liner, tracks a page view, a structured event and two
self-describing events (one of them invalid on purpose), and prints what the collector
received. The last line is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import json

from snowplow_tracker import (
    EmitterConfiguration,
    PageView,
    SelfDescribing,
    SelfDescribingJson,
    Snowplow,
    StructuredEvent,
    Subject,
)
from snowplow_tracker.collector import LocalCollector

# A schema of our own for the self-describing event below; the collector validates against it.
BASKET_SCHEMA = "iglu:com.example/basket_change/jsonschema/1-0-0"
BASKET_SCHEMA_DOCUMENT = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {
        "vendor": "com.example",
        "name": "basket_change",
        "format": "jsonschema",
        "version": "1-0-0",
    },
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1},
    },
    "required": ["sku", "quantity"],
    "additionalProperties": False,
}


def main() -> None:
    with LocalCollector() as collector:
        collector.add_schema(BASKET_SCHEMA, BASKET_SCHEMA_DOCUMENT)
        print(f"Local collector listening on {collector.endpoint}")

        tracker = Snowplow.create_tracker(
            namespace="quickstart",
            endpoint=collector.endpoint,
            app_id="demo-app",
            subject=Subject().set_platform("srv").set_user_id("user-42"),
            emitter_config=EmitterConfiguration(batch_size=5, asynchronous=True),
        )
        # track() returns the event id (eid) of each event.
        event_ids = [
            tracker.track(PageView(page_url="https://shop.example.com/", page_title="Home")),
            tracker.track(StructuredEvent(category="shop", action="search", label="socks")),
            tracker.track(
                SelfDescribing(SelfDescribingJson(BASKET_SCHEMA, {"sku": "socks-1", "quantity": 2}))
            ),
            # An invalid one, to show how the collector reports it: quantity must be >= 1.
            tracker.track(
                SelfDescribing(SelfDescribingJson(BASKET_SCHEMA, {"sku": "socks-1", "quantity": 0}))
            ),
        ]
        # The emitter is asynchronous: ask it to send now and wait (at most 5 seconds).
        tracker.force_flush(timeout=5)

        collector.wait_for(4, timeout=10)
        print(f"\nArrived: {collector.summary()}")
        for good in collector.good():
            fields = good["event"]
            print(
                f"  good  {good['eventType']:<10} {good.get('schema') or '':<58}"
                f" app_id={fields.get('app_id')} event_id={fields.get('event_id')}"
            )
        for bad in collector.bad():
            print(f"  bad   {'; '.join(bad['errors'])[:160]}")
        if collector.good():
            print("\nThe last good event as the collector decoded it (fields that are set):")
            decoded = collector.good()[-1]["event"]
            print(json.dumps({k: v for k, v in decoded.items() if v is not None}, indent=2))

        summary = {
            "example": "quickstart",
            **collector.summary(),
            "event_types": [good["eventType"] for good in collector.good()],
            "tracked_event_ids": event_ids,
            "arrived_event_ids": collector.event_ids(),
        }
        tracker.shutdown(timeout=5)
        Snowplow.reset()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
