"""Track a few events into the local collector and show what arrived.

Run: python examples/quickstart.py
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
        tracker.track(PageView(page_url="https://shop.example.com/", page_title="Home"))
        tracker.track(StructuredEvent(category="shop", action="search", label="socks"))
        tracker.track(
            SelfDescribing(SelfDescribingJson(BASKET_SCHEMA, {"sku": "socks-1", "quantity": 2}))
        )
        # An invalid one, to show how the collector reports it: quantity must be >= 1.
        tracker.track(
            SelfDescribing(SelfDescribingJson(BASKET_SCHEMA, {"sku": "socks-1", "quantity": 0}))
        )
        tracker.flush()

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
            print("\nOne good event as the collector decoded it:")
            print(json.dumps(collector.good()[-1]["event"], indent=2)[:1500])
        Snowplow.reset()


if __name__ == "__main__":
    main()
