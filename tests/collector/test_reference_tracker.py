"""Drive the collector with the ORIGINAL snowplow-tracker 1.1.0 (separate virtual environment).

Every event type and deprecated ``track_*`` method is sent with GET and POST emitters, with
base64 on and off, with a subject; every event must come out good and decoded correctly.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Dict, List

import pytest

from snowplow_tracker.collector import LocalCollector
from tests.support.reference_env import run_script

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SCRIPT = r"""
import json, sys, uuid, warnings
warnings.simplefilter("ignore")
from snowplow_tracker import (
    Emitter, Tracker, Subject, SelfDescribingJson,
    PageView, PagePing, StructuredEvent, SelfDescribing, ScreenView,
)

endpoint = sys.argv[1]
SP = "iglu:com.snowplowanalytics.snowplow/"
WEB_PAGE = SelfDescribingJson(
    SP + "web_page/jsonschema/1-0-0", {"id": "0e2b4c1a-1111-4222-8333-944445555666"}
)
GEO = SelfDescribingJson(
    SP + "geolocation_context/jsonschema/1-1-0", {"latitude": 51.5, "longitude": -0.1}
)
CLICK = SelfDescribingJson(
    SP + "link_click/jsonschema/1-0-1", {"targetUrl": "https://next.example/"}
)
CART = SelfDescribingJson(SP + "add_to_cart/jsonschema/1-0-0", {"sku": "sku-9", "quantity": 1})
PAGE = "https://shop.example/p"
report = {}
for method in ("get", "post"):
    for encode in (True, False):
        app_id = "ref-%s-%s" % (method, "b64" if encode else "plain")
        subject = (
            Subject().set_platform("web").set_user_id("user-1").set_screen_resolution(1920, 1080)
            .set_viewport(800, 600).set_color_depth(24).set_timezone("Europe/London")
            .set_lang("en-GB").set_domain_user_id("duid-1")
            .set_domain_session_id("5b8ee2a4-35fa-4b89-9c29-9e8e4ee5b48d")
            .set_domain_session_index(3).set_ip_address("10.1.2.3").set_useragent("agent/1.0")
            .set_network_user_id("tnuid-1")
        )
        emitter = Emitter(endpoint, method=method, batch_size=1 if method == "get" else 50)
        tracker = Tracker("ns-ref", emitter, subject=subject, app_id=app_id, encode_base64=encode)
        events = [
            PageView(PAGE + "?q=1", "Product", "https://ref.example/", context=[WEB_PAGE]),
            PagePing(PAGE, "Product", min_x=1, max_x=2, min_y=3, max_y=4),
            StructuredEvent("shop", "add", label="lbl", property_="prop", value=2.5),
            SelfDescribing(CLICK, context=[WEB_PAGE, GEO]),
            ScreenView(id_=str(uuid.uuid4()), name="home", type="feed"),
        ]
        eids = [tracker.track(event) for event in events]
        tracker.track_screen_view(name="legacy-screen", id_="screen-1")
        tracker.track_link_click(
            "https://x.example/", element_id="a1", element_classes=["c1"],
            element_target="_blank", element_content="click me",
        )
        tracker.track_add_to_cart(
            "sku-1", 2, name="Thing", category="cat", unit_price=9.99, currency="EUR"
        )
        tracker.track_remove_from_cart("sku-1", 1)
        tracker.track_form_change(
            "form-1", "field-1", "INPUT", "typed", type_="text", element_classes=["c"]
        )
        tracker.track_form_submit("form-1", form_classes=["f"], elements=[
            {"name": "email", "value": "a@b.example", "nodeName": "INPUT", "type": "email"}])
        tracker.track_site_search(["shoes", "red"], filters={"colour": "red", "sale": True},
                                  total_results=10, page_results=5)
        tracker.track_ecommerce_transaction("order-1", 20.5, affiliation="aff", tax_value=1.5,
                                            shipping=2.0, city="Paris", state="IDF", country="FR",
                                            currency="EUR", items=[
            {"sku": "sku-1", "price": 9.5, "quantity": 1, "name": "Thing", "category": "cat"},
            {"sku": "sku-2", "price": 11.0, "quantity": 2}])
        tracker.track_mobile_screen_view("mobile-screen")
        tracker.track_unstruct_event(CART)
        tracker.track_struct_event("legacy-cat", "legacy-act")
        tracker.track_page_view("https://shop.example/legacy")
        tracker.track_page_ping("https://shop.example/legacy")
        tracker.flush()
        report[app_id] = [e for e in eids if isinstance(e, str)]
print(json.dumps(report))
"""

PER_SCENARIO = 20
SCENARIOS = ("ref-get-b64", "ref-get-plain", "ref-post-b64", "ref-post-plain")
SP = "iglu:com.snowplowanalytics.snowplow/"
EXPECTED_UNSTRUCT = collections.Counter(
    {
        SP + "link_click/jsonschema/1-0-1": 2,
        "iglu:com.snowplowanalytics.mobile/screen_view/jsonschema/1-0-0": 2,
        SP + "screen_view/jsonschema/1-0-0": 1,
        SP + "add_to_cart/jsonschema/1-0-0": 2,
        SP + "remove_from_cart/jsonschema/1-0-0": 1,
        SP + "change_form/jsonschema/1-0-0": 1,
        SP + "submit_form/jsonschema/1-0-0": 1,
        SP + "site_search/jsonschema/1-0-0": 1,
    }
)


@pytest.fixture(scope="module")
def reference_run(reference_env_python: Path, shared_iglu_dir: Path) -> Dict[str, Any]:
    with LocalCollector(iglu_dirs=[shared_iglu_dir]) as collector:
        returned = run_script(reference_env_python, SCRIPT, collector.endpoint, timeout=120)
        collector.wait_for(PER_SCENARIO * len(SCENARIOS), timeout=10)
        return {
            "returned": returned,
            "good": collector.good(),
            "bad": collector.bad(),
            "event_ids": collector.event_ids(),
        }


def by_app(run: Dict[str, Any], app_id: str) -> List[Dict[str, Any]]:
    return [g for g in run["good"] if g["event"]["app_id"] == app_id]


def test_every_event_from_tracker_1_1_0_is_good(reference_run: Dict[str, Any]) -> None:
    assert reference_run["bad"] == []
    assert len(reference_run["good"]) == PER_SCENARIO * len(SCENARIOS)
    assert len(set(reference_run["event_ids"])) == len(reference_run["event_ids"])
    for app_id in SCENARIOS:
        assert len(by_app(reference_run, app_id)) == PER_SCENARIO, app_id
        for eid in reference_run["returned"][app_id]:
            assert eid in reference_run["event_ids"]


@pytest.mark.parametrize("app_id", SCENARIOS)
def test_event_types_schemas_and_encodings(reference_run: Dict[str, Any], app_id: str) -> None:
    events = by_app(reference_run, app_id)
    types = collections.Counter(g["eventType"] for g in events)
    assert types == {
        "page_view": 2,
        "page_ping": 2,
        "struct": 2,
        "transaction": 1,
        "transaction_item": 2,
        "unstruct": 11,
    }
    unstruct = collections.Counter(g["schema"] for g in events if g["eventType"] == "unstruct")
    assert unstruct == EXPECTED_UNSTRUCT
    api_version = "tp1" if "-get-" in app_id else "tp2"
    assert {g["rawEvent"]["api"]["version"] for g in events} == {api_version}
    encoded = app_id.endswith("b64")
    for good in events:
        params = good["rawEvent"]["parameters"]
        if good["eventType"] == "unstruct":
            assert ("ue_px" in params) == encoded and ("ue_pr" in params) != encoded
        if good["contexts"]:
            assert ("cx" in params) == encoded and ("co" in params) != encoded


@pytest.mark.parametrize("app_id", SCENARIOS)
def test_subject_and_tracker_fields_are_decoded(reference_run: Dict[str, Any], app_id: str) -> None:
    for good in by_app(reference_run, app_id):
        event = good["event"]
        assert event["platform"] == "web"
        assert event["name_tracker"] == "ns-ref"
        assert event["v_tracker"] == "py-1.1.0"
        assert event["user_id"] == "user-1"
        assert (event["dvce_screenwidth"], event["dvce_screenheight"]) == (1920, 1080)
        assert (event["br_viewwidth"], event["br_viewheight"]) == (800, 600)
        assert event["br_colordepth"] == "24"
        assert event["os_timezone"] == "Europe/London"
        assert event["br_lang"] == "en-GB"
        assert event["domain_userid"] == "duid-1"
        assert event["domain_sessionid"] == "5b8ee2a4-35fa-4b89-9c29-9e8e4ee5b48d"
        assert event["domain_sessionidx"] == 3
        assert event["user_ipaddress"] == "10.1.2.3"
        assert event["useragent"] == "agent/1.0"
        assert event["network_userid"] == "tnuid-1"
        assert event["dvce_created_tstamp"].endswith("Z")
        assert len(event["event_id"]) == 36


def test_event_specific_fields_are_decoded(reference_run: Dict[str, Any]) -> None:
    events = by_app(reference_run, "ref-post-b64")

    def find(event_type: str, **fields: Any) -> Dict[str, Any]:
        for good in events:
            event = good["event"]
            if good["eventType"] == event_type and all(event[k] == v for k, v in fields.items()):
                return good
        raise AssertionError(f"no {event_type} with {fields}")

    page_view = find("page_view", page_url="https://shop.example/p?q=1")
    assert page_view["event"]["page_title"] == "Product"
    assert page_view["event"]["page_referrer"] == "https://ref.example/"
    assert page_view["event"]["page_urlquery"] == "q=1"
    assert page_view["contexts"] == [SP + "web_page/jsonschema/1-0-0"]
    assert page_view["event"]["contexts"]["data"][0]["data"]["id"].startswith("0e2b4c1a")
    ping = find("page_ping", page_url="https://shop.example/p")
    assert [
        ping["event"][k]
        for k in ("pp_xoffset_min", "pp_xoffset_max", "pp_yoffset_min", "pp_yoffset_max")
    ] == [1, 2, 3, 4]
    struct = find("struct", se_category="shop")
    assert (struct["event"]["se_action"], struct["event"]["se_label"]) == ("add", "lbl")
    assert (struct["event"]["se_property"], struct["event"]["se_value"]) == ("prop", 2.5)
    assert struct["schema"] == "iglu:com.google.analytics/event/jsonschema/1-0-0"
    transaction = find("transaction", tr_orderid="order-1")
    assert transaction["event"]["tr_total"] == 20.5 and transaction["event"]["tr_tax"] == 1.5
    assert (transaction["event"]["tr_city"], transaction["event"]["tr_currency"]) == (
        "Paris",
        "EUR",
    )
    item = find("transaction_item", ti_sku="sku-2")
    assert (item["event"]["ti_price"], item["event"]["ti_quantity"]) == (11.0, 2)
    assert item["event"]["ti_orderid"] == "order-1" and item["event"]["ti_currency"] == "EUR"
    link = [g for g in events if g["schema"] == SP + "link_click/jsonschema/1-0-1"]
    datas = [g["event"]["unstruct_event"]["data"]["data"] for g in link]
    assert {"targetUrl": "https://next.example/"} in datas
    assert {
        "targetUrl": "https://x.example/",
        "elementId": "a1",
        "elementClasses": ["c1"],
        "elementTarget": "_blank",
        "elementContent": "click me",
    } in datas
    [with_geo] = [g for g in link if len(g["contexts"]) == 2]
    assert with_geo["contexts"][1] == SP + "geolocation_context/jsonschema/1-1-0"
    [search] = [g for g in events if g["schema"] == SP + "site_search/jsonschema/1-0-0"]
    assert search["event"]["unstruct_event"]["data"]["data"]["terms"] == ["shoes", "red"]
    assert search["event"]["event_name"] == "site_search"
