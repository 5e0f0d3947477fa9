"""The deprecated track_* methods: payloads, delegation, warnings and return values."""

from __future__ import annotations

import base64
import copy
import json
import warnings
from typing import Any, Callable, Dict, List, Tuple
from unittest import mock

import pytest

from snowplow_tracker import (
    PagePing,
    PageView,
    ScreenView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
    disable_contracts,
)
from snowplow_tracker.events import Event

from .conftest import FIXED_DTM, RecordingEmitter

BASE = "iglu:com.snowplowanalytics.snowplow"
CTX = [SelfDescribingJson("iglu:com.acme/ctx/jsonschema/1-0-0", {"a": 1})]
SDJ = SelfDescribingJson("iglu:com.acme/event/jsonschema/1-0-0", {"k": "v"})
TAIL = ["eid", "dtm", "tv", "tna", "aid"]


def decode(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value).decode("utf-8"))


def unstruct(payload: Dict[str, Any]) -> Dict[str, Any]:
    envelope = decode(payload["ue_px"])
    assert envelope["schema"] == f"{BASE}/unstruct_event/jsonschema/1-0-0"
    return envelope["data"]  # type: ignore[no-any-return]


@pytest.fixture
def tracker(recorder: RecordingEmitter) -> Tracker:
    return Tracker("ns", recorder, app_id="app")


def call(fn: Callable[[], Any]) -> Tuple[Any, List[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, caught


# ---------------------------------------------------------------- warnings

# (method, arguments, number of warnings, replacement class named in the first warning)
CASES: List[Tuple[str, Tuple[Any, ...], int, str]] = [
    ("track_page_view", ("http://x",), 1, "PageView"),
    ("track_page_ping", ("http://x",), 1, "PagePing"),
    ("track_link_click", ("http://x",), 2, "SelfDescribing"),
    ("track_add_to_cart", ("sku", 1), 2, ""),
    ("track_remove_from_cart", ("sku", 1), 2, ""),
    ("track_form_change", ("f", "e", "INPUT", "v"), 2, "SelfDescribing"),
    ("track_form_submit", ("f",), 2, "SelfDescribing"),
    ("track_site_search", (["t"],), 2, "SelfDescribing"),
    ("track_ecommerce_transaction_item", ("o", "s", 1.0, 1), 1, ""),
    ("track_ecommerce_transaction", ("o", 10), 1, ""),
    ("track_screen_view", ("home",), 2, "ScreenView"),
    ("track_mobile_screen_view", ("home",), 1, "ScreenView"),
    ("track_struct_event", ("c", "a"), 1, "StructuredEvent"),
    ("track_self_describing_event", (SDJ,), 1, "SelfDescribing"),
    ("track_unstruct_event", (SDJ,), 2, "SelfDescribing"),
]


@pytest.mark.parametrize(
    ("method", "args", "count", "replacement"), CASES, ids=[c[0] for c in CASES]
)
def test_warnings_and_return_value(
    tracker: Tracker,
    recorder: RecordingEmitter,
    method: str,
    args: Tuple[Any, ...],
    count: int,
    replacement: str,
) -> None:
    result, caught = call(lambda: getattr(tracker, method)(*args))
    assert result is tracker
    assert len(caught) == count
    assert all(w.category is DeprecationWarning for w in caught)
    first = str(caught[0].message)
    assert first.startswith(method + " ")
    if replacement:
        assert f" {replacement} " in first
        assert "Structured " not in first
    else:
        assert "deprecated" in first
    # The outer warning points at the caller, the nested one at the library.
    assert caught[0].filename == __file__
    if count == 2:
        assert str(caught[1].message).startswith("track_self_describing_event ")
        assert caught[1].filename.endswith("tracker.py")
    assert len(recorder.payloads) == 1


def test_unstruct_points_at_the_self_describing_class(tracker: Tracker) -> None:
    _, caught = call(lambda: tracker.track_unstruct_event(SDJ))
    assert "SelfDescribing" in str(caught[0].message)
    assert "track_self_describing_event" not in str(caught[0].message)


def test_transaction_warns_once_per_item(tracker: Tracker) -> None:
    items = [{"sku": "a", "price": 1, "quantity": 1}, {"sku": "b", "price": 2, "quantity": 2}]
    _, caught = call(lambda: tracker.track_ecommerce_transaction("o", 3, items=items))
    assert [str(w.message).split()[0] for w in caught] == [
        "track_ecommerce_transaction",
        "track_ecommerce_transaction_item",
        "track_ecommerce_transaction_item",
    ]


# ---------------------------------------------------------------- delegation


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@pytest.mark.parametrize(
    ("method", "args", "cls", "attrs"),
    [
        (
            "track_page_view",
            ("u", "t", "r"),
            PageView,
            {"page_url": "u", "page_title": "t", "referrer": "r"},
        ),
        ("track_page_ping", ("u", "t", "r", 1, 2, 3, 4), PagePing, {"min_x": 1, "max_y": 4}),
        (
            "track_struct_event",
            ("c", "a", "l", "p", 5),
            StructuredEvent,
            {"label": "l", "value": 5},
        ),
        ("track_self_describing_event", (SDJ,), SelfDescribing, {"event_json": SDJ}),
        ("track_mobile_screen_view", ("home", "id-1"), ScreenView, {"name": "home", "id_": "id-1"}),
    ],
)
def test_delegates_to_track_with_an_event(
    tracker: Tracker, method: str, args: Tuple[Any, ...], cls: type, attrs: Dict[str, Any]
) -> None:
    subject = Subject()
    with mock.patch.object(Tracker, "track") as track:
        getattr(tracker, method)(*args, context=CTX, tstamp=99, event_subject=subject)
    track.assert_called_once()
    assert track.call_args.args == ()
    event = track.call_args.kwargs["event"]
    assert type(event) is cls
    for name, value in attrs.items():
        assert getattr(event, name) == value
    assert event.context is CTX
    assert event.true_timestamp == 99
    assert event.event_subject is subject


@pytest.mark.parametrize(
    ("method", "args", "schema", "data"),
    [
        (
            "track_link_click",
            ("http://t",),
            "link_click/jsonschema/1-0-1",
            {"targetUrl": "http://t"},
        ),
        (
            "track_add_to_cart",
            ("s", 2),
            "add_to_cart/jsonschema/1-0-0",
            {"sku": "s", "quantity": 2},
        ),
        (
            "track_remove_from_cart",
            ("s", 2),
            "remove_from_cart/jsonschema/1-0-0",
            {"sku": "s", "quantity": 2},
        ),
        (
            "track_form_change",
            ("f", None, "INPUT", None),
            "change_form/jsonschema/1-0-0",
            {"formId": "f", "elementId": None, "nodeName": "INPUT", "value": None},
        ),
        ("track_form_submit", ("f",), "submit_form/jsonschema/1-0-0", {"formId": "f"}),
        ("track_site_search", (["a"],), "site_search/jsonschema/1-0-0", {"terms": ["a"]}),
        ("track_screen_view", ("home",), "screen_view/jsonschema/1-0-0", {"name": "home"}),
        ("track_unstruct_event", (SDJ,), None, None),
    ],
)
def test_delegates_to_track_self_describing_event(
    tracker: Tracker, method: str, args: Tuple[Any, ...], schema: Any, data: Any
) -> None:
    subject = Subject()
    with mock.patch.object(Tracker, "track_self_describing_event") as inner:
        assert (
            getattr(tracker, method)(*args, context=CTX, tstamp=7, event_subject=subject) is tracker
        )
    inner.assert_called_once()
    assert inner.call_args.args == ()
    kwargs = inner.call_args.kwargs
    assert set(kwargs) == {"event_json", "context", "tstamp", "event_subject"}
    assert kwargs["context"] is CTX and kwargs["tstamp"] == 7 and kwargs["event_subject"] is subject
    if schema is None:
        assert kwargs["event_json"] is SDJ
    else:
        assert kwargs["event_json"].schema == f"{BASE}/{schema}"
        assert kwargs["event_json"].data == data


def test_item_delegation_uses_keywords(tracker: Tracker) -> None:
    subject = Subject()
    item = {"sku": "s", "price": 2.5, "quantity": 1, "name": "n"}
    with mock.patch.object(Tracker, "track_ecommerce_transaction_item") as track_item:
        tracker.track_ecommerce_transaction(
            "o", 2.5, currency="EUR", items=[item], context=CTX, tstamp=5, event_subject=subject
        )
    track_item.assert_called_once_with(
        sku="s",
        price=2.5,
        quantity=1,
        name="n",
        order_id="o",
        currency="EUR",
        tstamp=5,
        event_subject=subject,
        context=CTX,
    )


# ---------------------------------------------------------------- payloads


def test_page_view_payload(tracker: Tracker, recorder: RecordingEmitter, pinned: List[str]) -> None:
    tracker.track_page_view("http://x", "T", "http://r", context=CTX, tstamp=123.9)
    assert list(recorder.last.items())[:6] == [
        ("e", "pv"),
        ("url", "http://x"),
        ("page", "T"),
        ("refr", "http://r"),
        ("cx", recorder.last["cx"]),
        ("ttm", 123),
    ]
    assert list(recorder.last)[6:] == ["p", *TAIL]
    assert recorder.last["dtm"] == FIXED_DTM


def test_page_ping_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    tracker.track_page_ping("http://x", None, None, 0, 10, 20, 30)
    assert list(recorder.last) == ["e", "url", "pp_mix", "pp_max", "pp_miy", "pp_may", "p", *TAIL]


def test_link_click_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    tracker.track_link_click("http://t", "id", ["a", "b"], "_blank", "text")
    assert list(recorder.last) == ["e", "ue_px", "p", *TAIL]
    assert unstruct(recorder.last) == {
        "schema": f"{BASE}/link_click/jsonschema/1-0-1",
        "data": {
            "targetUrl": "http://t",
            "elementId": "id",
            "elementClasses": ["a", "b"],
            "elementTarget": "_blank",
            "elementContent": "text",
        },
    }


@pytest.mark.parametrize(
    ("method", "name"),
    [("track_add_to_cart", "add_to_cart"), ("track_remove_from_cart", "remove_from_cart")],
)
def test_cart_payloads(
    tracker: Tracker, recorder: RecordingEmitter, method: str, name: str
) -> None:
    getattr(tracker, method)("sku", 2, "n", "c", 1.5, "USD")
    data = unstruct(recorder.last)
    assert data["schema"] == f"{BASE}/{name}/jsonschema/1-0-0"
    assert list(data["data"].items()) == [
        ("sku", "sku"),
        ("quantity", 2),
        ("name", "n"),
        ("category", "c"),
        ("unitPrice", 1.5),
        ("currency", "USD"),
    ]
    getattr(tracker, method)("sku", 0)
    assert unstruct(recorder.last)["data"] == {"sku": "sku", "quantity": 0}


def test_form_change_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    tracker.track_form_change("f", "e", "TEXTAREA", "v", "Email", ["c"])
    assert unstruct(recorder.last) == {
        "schema": f"{BASE}/change_form/jsonschema/1-0-0",
        "data": {
            "formId": "f",
            "elementId": "e",
            "nodeName": "TEXTAREA",
            "value": "v",
            "type": "Email",
            "elementClasses": ["c"],
        },
    }


def test_form_change_validation(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match=r"^form_id is empty\.$"):
        tracker.track_form_change("", "e", "INPUT", "v")
    with pytest.raises(ValueError, match=r"^node_name is not supported\.$"):
        tracker.track_form_change("f", "e", "DIV", "v")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^type_ is not supported\.$"):
        tracker.track_form_change("f", "e", "INPUT", "v", "bogus")
    with pytest.raises(ValueError, match=r"^type_ is not supported\.$"):
        tracker.track_form_change("f", "e", "INPUT", "v", 5)  # type: ignore[arg-type]


def test_form_submit_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    elements = [{"name": "n", "value": "v", "nodeName": "INPUT", "type": "text"}]
    tracker.track_form_submit("f", ["c"], elements)
    assert unstruct(recorder.last)["data"] == {
        "formId": "f",
        "formClasses": ["c"],
        "elements": elements,
    }
    tracker.track_form_submit("f", None, [])
    assert unstruct(recorder.last)["data"] == {"formId": "f"}


def test_form_submit_validation(tracker: Tracker, recorder: RecordingEmitter) -> None:
    with pytest.raises(ValueError, match=r"^element is not allowed\.$"):
        tracker.track_form_submit("f", elements=[{"name": "n"}])
    with pytest.raises(ValueError, match=r"^form_id is empty\.$"):
        tracker.track_form_submit("")
    assert recorder.payloads == []


def test_site_search_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    tracker.track_site_search(["a", "b"], {"x": True}, 10, 0)
    assert unstruct(recorder.last) == {
        "schema": f"{BASE}/site_search/jsonschema/1-0-0",
        "data": {"terms": ["a", "b"], "filters": {"x": True}, "totalResults": 10, "pageResults": 0},
    }
    with pytest.raises(ValueError, match=r"^terms is empty\.$"):
        tracker.track_site_search([])


def test_legacy_screen_view_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    tracker.track_screen_view("home", "id-1")
    assert unstruct(recorder.last) == {
        "schema": f"{BASE}/screen_view/jsonschema/1-0-0",
        "data": {"name": "home", "id": "id-1"},
    }
    tracker.track_screen_view()
    assert unstruct(recorder.last)["data"] == {}


def test_mobile_screen_view_generates_an_id(
    tracker: Tracker, recorder: RecordingEmitter, pinned: List[str]
) -> None:
    tracker.track_mobile_screen_view(
        "home", type="feed", previous_name="prev", transition_type="push"
    )
    data = unstruct(recorder.last)
    assert data["schema"] == "iglu:com.snowplowanalytics.mobile/screen_view/jsonschema/1-0-0"
    assert data["data"] == {
        "id": pinned[0],
        "name": "home",
        "type": "feed",
        "previousName": "prev",
        "transitionType": "push",
    }
    assert recorder.last["eid"] == pinned[1]


def test_struct_event_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    tracker.track_struct_event("c", "a", "", None, 0)
    assert list(recorder.last.items())[:4] == [
        ("e", "se"),
        ("se_ca", "c"),
        ("se_ac", "a"),
        ("se_va", 0),
    ]


def test_self_describing_and_unstruct_payloads(
    tracker: Tracker, recorder: RecordingEmitter
) -> None:
    tracker.track_self_describing_event(SDJ, CTX, 5)
    tracker.track_unstruct_event(SDJ, tuple(CTX))  # type: ignore[arg-type]
    first, second = recorder.payloads
    assert list(first) == ["e", "ue_px", "cx", "ttm", "p", *TAIL]
    assert list(second) == ["e", "ue_px", "cx", "p", *TAIL]
    assert unstruct(first) == SDJ.to_json() == unstruct(second)


def test_transaction_item_payload(tracker: Tracker, recorder: RecordingEmitter) -> None:
    tracker.track_ecommerce_transaction_item("o", "s", 1.5, 2, "n", None, "EUR", tstamp=8)
    assert list(recorder.last.items())[:8] == [
        ("e", "ti"),
        ("ti_id", "o"),
        ("ti_sk", "s"),
        ("ti_nm", "n"),
        ("ti_pr", 1.5),
        ("ti_qu", 2),
        ("ti_cu", "EUR"),
        ("ttm", 8),
    ]
    with pytest.raises(ValueError, match=r"^order_id is empty\.$"):
        tracker.track_ecommerce_transaction_item("", "s", 1, 1)
    with pytest.raises(ValueError, match=r"^sku is empty\.$"):
        tracker.track_ecommerce_transaction_item("o", "", 1, 1)


def test_transaction_payloads(tracker: Tracker, recorder: RecordingEmitter) -> None:
    items = [
        {"sku": "s1", "price": 1, "quantity": 1},
        {"sku": "s2", "price": 2, "quantity": 3, "name": "n"},
    ]
    tracker.track_ecommerce_transaction(
        "o", 10, "aff", 1, 2, "city", "st", "co", "EUR", items=items, tstamp=55
    )
    transaction, first, second = recorder.payloads
    assert list(transaction.items())[:11] == [
        ("e", "tr"),
        ("tr_id", "o"),
        ("tr_tt", 10),
        ("tr_af", "aff"),
        ("tr_tx", 1),
        ("tr_sh", 2),
        ("tr_ci", "city"),
        ("tr_st", "st"),
        ("tr_co", "co"),
        ("tr_cu", "EUR"),
        ("ttm", 55),
    ]
    assert list(first.items())[:7] == [
        ("e", "ti"),
        ("ti_id", "o"),
        ("ti_sk", "s1"),
        ("ti_pr", 1),
        ("ti_qu", 1),
        ("ti_cu", "EUR"),
        ("ttm", 55),
    ]
    assert second["ti_nm"] == "n" and second["ti_qu"] == 3


def test_transaction_does_not_mutate_items(tracker: Tracker) -> None:
    items = [{"sku": "s1", "price": 1, "quantity": 1, "currency": "ignored"}]
    snapshot = copy.deepcopy(items)
    tracker.track_ecommerce_transaction("o", 1, currency="EUR", items=items, context=CTX)
    assert items == snapshot


def test_items_follow_the_transaction_timestamp(
    tracker: Tracker, recorder: RecordingEmitter
) -> None:
    tracker.track_ecommerce_transaction("o", 1, items=[{"sku": "s", "price": 1, "quantity": 1}])
    assert "ttm" not in recorder.payloads[0]
    assert "ttm" not in recorder.payloads[1]


def test_items_inherit_currency_subject_and_context(
    tracker: Tracker, recorder: RecordingEmitter
) -> None:
    subject = Subject().set_user_id("buyer")
    tracker.track_ecommerce_transaction(
        "o",
        1,
        currency="EUR",
        items=[{"sku": "s", "price": 1, "quantity": 1}],
        context=CTX,
        event_subject=subject,
    )
    for payload in recorder.payloads:
        assert payload["uid"] == "buyer"
        assert "cx" in payload
    assert recorder.payloads[1]["ti_cu"] == "EUR"


@pytest.mark.parametrize(
    ("items", "error", "match"),
    [
        ([{"sku": "s", "price": 1, "quantity": 1, "colour": "red"}], TypeError, "colour"),
        ([{"sku": "s", "price": 1}], TypeError, "quantity"),
        (["not a dict"], TypeError, "items"),
        ([{"sku": "", "price": 1, "quantity": 1}], ValueError, "^sku is empty.$"),
    ],
)
def test_bad_items_are_rejected_before_tracking(
    tracker: Tracker, recorder: RecordingEmitter, items: Any, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        tracker.track_ecommerce_transaction("o", 1, items=items)
    assert recorder.payloads == []


def test_transaction_order_id_required(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match=r"^order_id is empty\.$"):
        tracker.track_ecommerce_transaction("", 1)


def test_checks_off_when_contracts_disabled(tracker: Tracker, recorder: RecordingEmitter) -> None:
    disable_contracts()
    tracker.track_link_click("")
    tracker.track_form_change("", "e", "DIV", "v", "bogus")  # type: ignore[arg-type]
    tracker.track_form_submit("", elements=[{"bad": 1}])
    tracker.track_site_search([])
    tracker.track_add_to_cart("", 1)
    tracker.track_ecommerce_transaction("", 1, items=[{"sku": "", "price": 1, "quantity": 1}])
    assert len(recorder.payloads) == 7


def test_plain_event_used_for_transactions(tracker: Tracker) -> None:
    with mock.patch.object(Tracker, "track") as track:
        tracker.track_ecommerce_transaction("o", 1)
    assert type(track.call_args.kwargs["event"]) is Event
