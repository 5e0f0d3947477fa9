"""Testing your tracking with pytest and the ``snowplow_collector`` fixture.

Run: python -m pytest examples/test_with_fixture.py

Installing this package registers a pytest plugin, so the ``snowplow_collector`` fixture
is available in every test suite without any import or conftest.py line. It is a running
``LocalCollector`` (one per test session, emptied before each test): point your code at
``snowplow_collector.endpoint``, then assert on what arrived.

In a real project, ``Shop`` would be your application code and the tests would live in
your own ``tests/`` directory.
"""

from __future__ import annotations

from snowplow_tracker import Emitter, SelfDescribing, SelfDescribingJson, StructuredEvent, Tracker
from snowplow_tracker.collector import LocalCollector

SEARCH_SCHEMA = "iglu:com.example/search/jsonschema/1-0-0"
SEARCH_SCHEMA_DOCUMENT = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {"vendor": "com.example", "name": "search", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {"terms": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "required": ["terms"],
    "additionalProperties": False,
}


class Shop:
    """Stands in for application code that tracks events."""

    def __init__(self, collector_endpoint: str) -> None:
        self.emitter = Emitter(collector_endpoint, batch_size=1)
        self.tracker = Tracker("shop", emitters=self.emitter, app_id="shop")

    def add_to_basket(self, sku: str) -> None:
        self.tracker.track(StructuredEvent(category="basket", action="add", label=sku))

    def search(self, *terms: str) -> None:
        event = SelfDescribingJson(SEARCH_SCHEMA, {"terms": list(terms)})
        self.tracker.track(SelfDescribing(event))


def test_adding_to_the_basket_is_tracked(snowplow_collector: LocalCollector) -> None:
    shop = Shop(snowplow_collector.endpoint)

    shop.add_to_basket("socks-1")

    assert snowplow_collector.wait_for(1, timeout=5)
    assert snowplow_collector.bad() == []
    [good] = snowplow_collector.good()
    assert good["eventType"] == "struct"
    assert good["event"]["se_action"] == "add"
    assert good["event"]["se_label"] == "socks-1"
    assert good["event"]["app_id"] == "shop"


def test_search_events_match_their_schema(snowplow_collector: LocalCollector) -> None:
    snowplow_collector.add_schema(SEARCH_SCHEMA, SEARCH_SCHEMA_DOCUMENT)
    shop = Shop(snowplow_collector.endpoint)

    shop.search("wool", "socks")
    shop.search()  # a bug: no terms; the schema requires at least one

    snowplow_collector.assert_counts(good=1, bad=1)
    [bad] = snowplow_collector.bad()
    assert any("terms" in error for error in bad["errors"])


def test_events_are_retried_when_the_collector_fails(snowplow_collector: LocalCollector) -> None:
    snowplow_collector.fail_next(1, status=503)  # the first request gets a 503
    shop = Shop(snowplow_collector.endpoint)

    shop.add_to_basket("socks-2")

    # The emitter backs off (under a second for a first retry), then sends it again.
    assert snowplow_collector.wait_for(1, timeout=10)
    assert [r["status"] for r in snowplow_collector.requests()] == [503, 200]
    assert shop.emitter.stats().retried == 1
