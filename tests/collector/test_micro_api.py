"""The Snowplow-Micro-compatible REST API: paths, JSON shapes, filters, ordering."""

from __future__ import annotations

from typing import Any, Dict, List

import requests

from snowplow_tracker.collector import LocalCollector

from .helpers import (
    ADD_TO_CART,
    LINK_CLICK,
    TP2,
    WEB_PAGE,
    b64,
    body,
    contexts,
    link_click,
    page_view,
    unstruct,
    web_page,
)

GEO = "iglu:com.snowplowanalytics.snowplow/geolocation_context/jsonschema/1-1-0"


def send_mix(collector: LocalCollector, session: requests.Session) -> None:
    """Three good events (pv, link click with 2 entities, add to cart) and one bad row."""
    geo = {"schema": GEO, "data": {"latitude": 1.0, "longitude": 2.0}}
    events = [
        page_view(aid="first"),
        link_click(aid="second", cx=b64(contexts(web_page(), geo))),
        link_click(
            aid="third",
            ue_px=b64(unstruct(ADD_TO_CART, {"sku": "s1", "quantity": 2})),
            cx=b64(contexts(web_page())),
        ),
        page_view(eid="not-a-uuid"),
    ]
    response = session.post(collector.url(TP2), json=body(*events))
    assert response.status_code == 200


def test_all_returns_counts(collector: LocalCollector, session: requests.Session) -> None:
    send_mix(collector, session)
    expected = {"total": 4, "good": 3, "bad": 1}
    assert session.get(collector.url("/micro/all")).json() == expected
    assert session.post(collector.url("/micro/all")).json() == expected
    assert collector.summary() == expected


def test_good_lists_newest_first_over_rest_and_oldest_first_in_python(
    collector: LocalCollector, session: requests.Session
) -> None:
    send_mix(collector, session)
    rest = session.get(collector.url("/micro/good")).json()
    assert [g["event"]["app_id"] for g in rest] == ["third", "second", "first"]
    assert [g["event"]["app_id"] for g in collector.good()] == ["first", "second", "third"]
    event = rest[0]
    assert set(event) == {"rawEvent", "eventType", "schema", "contexts", "event", "incomplete"}
    assert set(event["rawEvent"]) == {"api", "parameters", "contentType", "source", "context"}
    assert set(event["rawEvent"]["context"]) == {
        "timestamp",
        "ipAddress",
        "useragent",
        "refererUri",
        "headers",
        "userId",
    }
    assert event["eventType"] == "unstruct" and event["schema"] == ADD_TO_CART
    assert event["contexts"] == [WEB_PAGE]
    assert event["event"]["unstruct_event"]["data"]["data"] == {"sku": "s1", "quantity": 2}
    assert event["event"]["contexts"]["data"][0]["schema"] == WEB_PAGE


def test_good_filters_event_type_schema_contexts_and_limit(
    collector: LocalCollector, session: requests.Session
) -> None:
    send_mix(collector, session)

    def good(filters: Dict[str, Any]) -> List[Any]:
        response = session.post(collector.url("/micro/good"), json=filters)
        assert response.status_code == 200
        return [g["event"]["app_id"] for g in response.json()]

    assert good({"event_type": "unstruct"}) == ["third", "second"]
    assert good({"event_type": "ue"}) == ["third", "second"]
    assert good({"event_type": "page_view"}) == ["first"]
    assert good({"event_type": "pv"}) == ["first"]
    assert good({"schema": LINK_CLICK}) == ["second"]
    assert good({"contexts": [WEB_PAGE]}) == ["third", "second"]
    assert good({"contexts": [WEB_PAGE, GEO]}) == ["second"]
    assert good({"event_type": "unstruct", "schema": ADD_TO_CART, "contexts": [WEB_PAGE]}) == [
        "third"
    ]
    assert good({"limit": 1}) == ["third"]
    assert good({"limit": 0}) == []
    assert good({}) == ["third", "second", "first"]
    assert good({"schema": "iglu:com.acme/none/jsonschema/1-0-0"}) == []


def test_bad_lists_and_filters_vendor_version(
    collector: LocalCollector, session: requests.Session
) -> None:
    send_mix(collector, session)
    session.get(collector.url("/i"), params={"e": "zz", "p": "web", "tv": "t"})
    rest = session.get(collector.url("/micro/bad")).json()
    assert len(rest) == 2
    newest = rest[0]
    assert set(newest) == {"collectorPayload", "rawEvent", "errors"}
    assert newest["collectorPayload"]["api"]["version"] == "tp1"
    assert newest["errors"][0] == "Error while validating the event."
    assert newest["rawEvent"]["parameters"]["e"] == "zz"

    def bad(filters: Dict[str, Any]) -> List[Any]:
        rows: List[Any] = session.post(collector.url("/micro/bad"), json=filters).json()
        return rows

    assert len(bad({"vendor": "com.snowplowanalytics.snowplow"})) == 2
    assert [b["collectorPayload"]["api"]["version"] for b in bad({"version": "tp2"})] == ["tp2"]
    assert bad({"vendor": "com.acme"}) == []
    assert len(bad({"limit": 1})) == 1


def test_reset_clears_everything_and_returns_zero_counts(
    collector: LocalCollector, session: requests.Session
) -> None:
    send_mix(collector, session)
    assert session.get(collector.url("/micro/reset")).json() == {"total": 0, "good": 0, "bad": 0}
    send_mix(collector, session)
    assert session.post(collector.url("/micro/reset")).json() == {"total": 0, "good": 0, "bad": 0}
    assert collector.good() == [] and collector.bad() == []
    assert collector.event_ids() == [] and collector.requests() == []


def test_events_lists_enriched_events(collector: LocalCollector, session: requests.Session) -> None:
    send_mix(collector, session)
    events = session.get(collector.url("/micro/events")).json()
    assert [e["app_id"] for e in events] == ["third", "second", "first"]


def test_iglu_endpoint_serves_known_schemas_and_404s_unknown_ones(
    collector: LocalCollector, session: requests.Session
) -> None:
    found = session.get(
        collector.url("/micro/iglu/com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1")
    )
    assert found.status_code == 200
    assert found.json()["self"]["name"] == "link_click"
    envelope = session.get(
        collector.url("/micro/iglu/com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4")
    )
    assert envelope.status_code == 200
    missing = session.get(collector.url("/micro/iglu/com.acme/nothing/jsonschema/1-0-0"))
    assert missing.status_code == 404
    report = missing.json()["value"]
    assert all(r["errors"] == [{"error": "NotFound"}] for r in report.values())
    malformed = session.get(collector.url("/micro/iglu/com.acme/nothing"))
    assert malformed.status_code == 404 and "Valid paths" in malformed.text


def test_added_schemas_are_served_and_used(
    collector: LocalCollector, session: requests.Session
) -> None:
    uri = "iglu:com.acme/order/jsonschema/1-0-0"
    schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
    collector.add_schema(uri, schema)
    assert (
        session.get(collector.url("/micro/iglu/com.acme/order/jsonschema/1-0-0")).json() == schema
    )
    session.post(
        collector.url(TP2),
        json=body(
            link_click(ue_px=b64(unstruct(uri, {"id": "o1"}))),
            link_click(ue_px=b64(unstruct(uri, {}))),
        ),
    )
    assert collector.summary() == {"total": 2, "good": 1, "bad": 1}
    assert any("'id' is a required property" in e for e in collector.bad()[0]["errors"])


def test_unknown_micro_paths_list_the_valid_ones(
    collector: LocalCollector, session: requests.Session
) -> None:
    for path in ("/micro/nothing", "/micro", "/micro/good/extra"):
        response = session.get(collector.url(path))
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/plain")
        for valid in ("/micro/all", "/micro/good", "/micro/bad", "/micro/reset", "/micro/iglu/"):
            assert valid in response.text


def test_invalid_filter_bodies_get_400(
    collector: LocalCollector, session: requests.Session
) -> None:
    assert session.post(collector.url("/micro/good"), data=b"{nope").status_code == 400
    assert session.post(collector.url("/micro/good"), json=[1]).status_code == 400
    assert session.post(collector.url("/micro/good"), json={"limit": "x"}).status_code == 400
    assert session.post(collector.url("/micro/good"), json={"contexts": "x"}).status_code == 400
    assert session.post(collector.url("/micro/bad"), data=b"").status_code == 200
