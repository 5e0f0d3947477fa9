"""Event classes: their own keys, properties and build_payload."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List

import pytest

from snowplow_tracker import (
    Event,
    PagePing,
    PageView,
    ScreenView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    disable_contracts,
)
from snowplow_tracker.payload import Payload

CONTEXT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
UNSTRUCT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
MOBILE_SCREEN_VIEW = "iglu:com.snowplowanalytics.mobile/screen_view/jsonschema/1-0-0"
EVENT_SCHEMA = "iglu:com.acme/event/jsonschema/1-0-0"
CTX_SCHEMA = "iglu:com.acme/ctx/jsonschema/1-0-0"


def decode(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value).decode("utf-8"))


def build(event: Event, encode_base64: bool = False, subject: Any = None) -> Dict[str, Any]:
    return event.build_payload(
        encode_base64=encode_base64, json_encoder=None, subject=subject
    ).nv_pairs


# ---------------------------------------------------------------- own keys and order


def test_page_view_keys() -> None:
    pv = PageView("http://a.example/p", "Title", "http://ref.example")
    assert list(pv.payload.nv_pairs.items()) == [
        ("e", "pv"),
        ("url", "http://a.example/p"),
        ("page", "Title"),
        ("refr", "http://ref.example"),
    ]
    assert (pv.page_url, pv.page_title, pv.referrer) == (
        "http://a.example/p",
        "Title",
        "http://ref.example",
    )


def test_page_view_optional_getters_return_none() -> None:
    pv = PageView("u")
    assert pv.payload.nv_pairs == {"e": "pv", "url": "u"}
    assert pv.page_title is None and pv.referrer is None


def test_page_ping_keys() -> None:
    pp = PagePing("u", "t", "r", 1, 2, 3, 4)
    assert list(pp.payload.nv_pairs.items()) == [
        ("e", "pp"),
        ("url", "u"),
        ("page", "t"),
        ("refr", "r"),
        ("pp_mix", 1),
        ("pp_max", 2),
        ("pp_miy", 3),
        ("pp_may", 4),
    ]
    assert (pp.min_x, pp.max_x, pp.min_y, pp.max_y) == (1, 2, 3, 4)
    assert PagePing("u").min_x is None
    assert PagePing("u", min_x=0).payload.nv_pairs["pp_mix"] == 0


def test_structured_event_keys() -> None:
    se = StructuredEvent("cat", "act", "lab", "prop", 1.5)
    assert list(se.payload.nv_pairs.items()) == [
        ("e", "se"),
        ("se_ca", "cat"),
        ("se_ac", "act"),
        ("se_la", "lab"),
        ("se_pr", "prop"),
        ("se_va", 1.5),
    ]
    assert (se.category, se.action, se.label, se.property_, se.value) == (
        "cat",
        "act",
        "lab",
        "prop",
        1.5,
    )


def test_structured_event_drops_empty_label_and_keeps_zero_value() -> None:
    se = StructuredEvent("cat", "act", label="", value=0)
    assert se.payload.nv_pairs == {"e": "se", "se_ca": "cat", "se_ac": "act", "se_va": 0}
    assert se.label is None and se.property_ is None


class _NoTruth:
    """A value (like a numpy array) whose truth cannot be tested."""

    def __bool__(self) -> bool:
        raise ValueError("ambiguous")


class _Text(str):
    pass


def test_event_fields_keep_values_whose_truth_cannot_be_tested() -> None:
    odd = _NoTruth()
    se = StructuredEvent("cat", "act", label=_Text(""), value=odd)  # type: ignore[arg-type]
    assert se.payload.nv_pairs == {"e": "se", "se_ca": "cat", "se_ac": "act", "se_va": odd}
    pv = PageView("u", page_title=_Text(""), referrer=odd)  # type: ignore[arg-type]
    assert pv.payload.nv_pairs == {"e": "pv", "url": "u", "refr": odd}


def test_self_describing_keeps_only_e_until_built() -> None:
    sdj = SelfDescribingJson(EVENT_SCHEMA, {"k": 1})
    sd = SelfDescribing(sdj)
    assert sd.payload.nv_pairs == {"e": "ue"}
    assert sd.event_json is sdj


def test_plain_event_seeded_from_dict_skips_none_and_empty() -> None:
    event = Event(dict_={"e": "x", "a": 1, "b": None, "c": "", "d": 0})
    assert event.payload.nv_pairs == {"e": "x", "a": 1, "d": 0}
    assert Event().payload.nv_pairs == {}
    assert Event().context == []
    assert Event().event_subject is None and Event().true_timestamp is None


# ---------------------------------------------------------------- required fields


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: PageView(""), "^page_url is empty.$"),
        (lambda: PagePing(None), "^page_url is empty.$"),  # type: ignore[arg-type]
        (lambda: StructuredEvent("", "a"), "^category is empty.$"),
        (lambda: StructuredEvent("c", ""), "^action is empty.$"),
        (lambda: ScreenView("", "n"), "^id_ is empty.$"),
        (lambda: ScreenView("i", ""), "^name is empty.$"),
    ],
)
def test_required_fields(factory: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


def test_required_fields_unchecked_when_contracts_disabled() -> None:
    disable_contracts()
    assert PageView("").payload.nv_pairs == {"e": "pv"}
    assert StructuredEvent(None, None).payload.nv_pairs == {"e": "se"}  # type: ignore[arg-type]
    assert ScreenView("", "").screen_view_properties == {"id": "", "name": ""}
    assert ScreenView(None, "n").screen_view_properties == {"name": "n"}  # type: ignore[arg-type]


# ---------------------------------------------------------------- setters


def test_setters_replace_and_clear() -> None:
    pv = PageView("u1", "t1", "r1")
    pv.page_url = "u2"
    pv.page_title = None
    pv.referrer = ""
    assert pv.payload.nv_pairs == {"e": "pv", "url": "u2"}
    se = StructuredEvent("c", "a", "l", "p", 3)
    se.label = None
    se.value = None
    se.property_ = "q"
    assert se.payload.nv_pairs == {"e": "se", "se_ca": "c", "se_ac": "a", "se_pr": "q"}
    with pytest.raises(ValueError, match=r"^page_url is empty\.$"):
        pv.page_url = ""


def test_event_properties_are_writable() -> None:
    subject = Subject()
    ctx = [SelfDescribingJson(CTX_SCHEMA, {})]
    event = PageView("u")
    event.event_subject = subject
    event.context = ctx
    event.true_timestamp = 5
    assert (event.event_subject, event.context, event.true_timestamp) == (subject, ctx, 5)


# ---------------------------------------------------------------- screen view


def test_screen_view_properties_and_getters() -> None:
    sv = ScreenView("id-1", "home", "feed", "prev", "id-0", "list", "push")
    assert list(sv.screen_view_properties.items()) == [
        ("id", "id-1"),
        ("name", "home"),
        ("type", "feed"),
        ("previousName", "prev"),
        ("previousId", "id-0"),
        ("previousType", "list"),
        ("transitionType", "push"),
    ]
    assert sv.payload.nv_pairs == {}
    assert (sv.id_, sv.name, sv.type, sv.previous_name) == ("id-1", "home", "feed", "prev")
    assert (sv.previous_id, sv.previous_type, sv.transition_type) == ("id-0", "list", "push")


def test_screen_view_optional_getters_return_none_when_unset() -> None:
    sv = ScreenView("id-1", "home")
    assert sv.screen_view_properties == {"id": "id-1", "name": "home"}
    assert sv.type is None
    assert sv.previous_name is None
    assert sv.previous_id is None
    assert sv.previous_type is None
    assert sv.transition_type is None
    sv.type = "t"
    sv.type = None
    assert sv.type is None and "type" not in sv.screen_view_properties


def test_screen_view_builds_a_mobile_self_describing_event() -> None:
    ctx = [SelfDescribingJson(CTX_SCHEMA, {"c": 1})]
    sv = ScreenView("id-1", "home", true_timestamp=12.9, context=ctx)
    first = sv.build_payload(encode_base64=False, json_encoder=None)
    second = sv.build_payload(encode_base64=False, json_encoder=None)
    assert first is not second and first.nv_pairs is not second.nv_pairs
    nv = first.nv_pairs
    assert list(nv) == ["e", "ue_pr", "co", "ttm"]
    assert nv["e"] == "ue" and nv["ttm"] == 12
    assert json.loads(nv["ue_pr"]) == {
        "schema": UNSTRUCT_SCHEMA,
        "data": {"schema": MOBILE_SCREEN_VIEW, "data": {"id": "id-1", "name": "home"}},
    }
    assert json.loads(nv["co"])["data"] == [{"schema": CTX_SCHEMA, "data": {"c": 1}}]
    assert sv.payload.nv_pairs == {}


# ---------------------------------------------------------------- build_payload


def test_build_payload_order_context_ttm_subject() -> None:
    ctx = [SelfDescribingJson(CTX_SCHEMA, {"a": 1})]
    pv = PageView("u", context=ctx, true_timestamp=1234.9)
    nv = build(pv, encode_base64=True, subject=Subject().set_user_id("x"))
    assert list(nv) == ["e", "url", "cx", "ttm", "p", "uid"]
    assert nv["ttm"] == 1234 and isinstance(nv["ttm"], int)
    assert decode(nv["cx"]) == {
        "schema": CONTEXT_SCHEMA,
        "data": [{"schema": CTX_SCHEMA, "data": {"a": 1}}],
    }


def test_self_describing_build_order_and_envelopes() -> None:
    ctx = [SelfDescribingJson(CTX_SCHEMA, {"a": 1}), SelfDescribingJson(CTX_SCHEMA, {"b": 2})]
    sd = SelfDescribing(SelfDescribingJson(EVENT_SCHEMA, {"k": "ć"}), context=ctx, true_timestamp=7)
    encoded = build(sd, encode_base64=True, subject=Subject())
    assert list(encoded) == ["e", "ue_px", "cx", "ttm", "p"]
    assert decode(encoded["ue_px"]) == {
        "schema": UNSTRUCT_SCHEMA,
        "data": {"schema": EVENT_SCHEMA, "data": {"k": "ć"}},
    }
    assert len(decode(encoded["cx"])["data"]) == 2
    raw = build(sd, encode_base64=False)
    assert list(raw) == ["e", "ue_pr", "co", "ttm"]
    assert raw["ue_pr"] == (
        '{"schema": "'
        + UNSTRUCT_SCHEMA
        + '", "data": {"schema": "'
        + EVENT_SCHEMA
        + '", "data": {"k": "ć"}}}'
    )


def test_build_payload_returns_a_new_payload_and_leaves_the_event_alone() -> None:
    event = StructuredEvent(
        "c", "a", context=[SelfDescribingJson(CTX_SCHEMA, {})], true_timestamp=1
    )
    before = dict(event.payload.nv_pairs)
    first = event.build_payload(
        encode_base64=True, json_encoder=None, subject=Subject().set_user_id("u1")
    )
    second = event.build_payload(encode_base64=False, json_encoder=None, subject=Subject())
    assert isinstance(first, Payload) and first is not event.payload
    assert event.payload.nv_pairs == before
    assert "cx" in first.nv_pairs and "co" not in first.nv_pairs and first.nv_pairs["uid"] == "u1"
    assert "co" in second.nv_pairs and "cx" not in second.nv_pairs and "uid" not in second.nv_pairs


@pytest.mark.parametrize("tstamp", ["1234", None, [1]])
def test_ttm_only_for_numbers(tstamp: Any) -> None:
    assert "ttm" not in build(PageView("u", true_timestamp=tstamp))


@pytest.mark.parametrize(("tstamp", "expected"), [(1.99, 1), (0, 0), (10**13 + 0.5, 10**13)])
def test_ttm_is_int_of_the_timestamp(tstamp: float, expected: int) -> None:
    assert build(PageView("u", true_timestamp=tstamp))["ttm"] == expected


@pytest.mark.parametrize("context", [[], None, ()])
def test_empty_or_none_context_adds_nothing(context: Any) -> None:
    event = PageView("u")
    event.context = context
    assert list(build(event)) == ["e", "url"]


def test_context_tuple_and_subclasses() -> None:
    class ProjectContext(SelfDescribingJson):
        def __init__(self, project: str) -> None:
            super().__init__(CTX_SCHEMA, {"project": project})

    ctx = (ProjectContext("p1"), SelfDescribingJson(CTX_SCHEMA, {"x": 1}))
    nv = build(PageView("u", context=ctx))  # type: ignore[arg-type]
    assert json.loads(nv["co"])["data"] == [
        {"schema": CTX_SCHEMA, "data": {"project": "p1"}},
        {"schema": CTX_SCHEMA, "data": {"x": 1}},
    ]


@pytest.mark.parametrize(
    "context",
    [SelfDescribingJson(CTX_SCHEMA, {}), [{"schema": CTX_SCHEMA, "data": {}}], ["text"]],
)
def test_malformed_context_is_a_type_error(context: Any) -> None:
    with pytest.raises(TypeError, match="context"):
        build(PageView("u", context=context))


def test_bad_event_json_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="event_json"):
        build(SelfDescribing({"schema": EVENT_SCHEMA, "data": {}}))  # type: ignore[arg-type]


def test_custom_json_encoder_applies_to_event_and_context() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    def encoder(value: Any) -> Any:
        if isinstance(value, Money):
            return value.cents / 100
        raise TypeError(type(value).__name__)

    sd = SelfDescribing(
        SelfDescribingJson(EVENT_SCHEMA, {"price": Money(250)}),
        context=[SelfDescribingJson(CTX_SCHEMA, {"cost": Money(5)})],
    )
    nv = sd.build_payload(encode_base64=False, json_encoder=encoder).nv_pairs
    assert json.loads(nv["ue_pr"])["data"]["data"] == {"price": 2.5}
    assert json.loads(nv["co"])["data"][0]["data"] == {"cost": 0.05}
    with pytest.raises(TypeError):
        sd.build_payload(encode_base64=False, json_encoder=None)


def test_user_subclass_overriding_build_payload() -> None:
    class Custom(Event):
        def __init__(self) -> None:
            super().__init__(dict_={"e": "se", "se_ca": "c", "se_ac": "a"})

        def build_payload(
            self, encode_base64: bool, json_encoder: Any, subject: Any = None
        ) -> Payload:
            self.payload.add("se_la", "added")
            return super().build_payload(encode_base64, json_encoder, subject)

    nv = build(Custom(), subject=Subject())
    assert list(nv) == ["e", "se_ca", "se_ac", "se_la", "p"]


def test_repr() -> None:
    assert "pv" in repr(PageView("u"))


def test_events_may_be_shared_by_subjectless_builds() -> None:
    contexts: List[SelfDescribingJson] = [SelfDescribingJson(CTX_SCHEMA, {"n": 1})]
    event = PageView("u", context=contexts)
    for _ in range(3):
        assert list(build(event, encode_base64=True)) == ["e", "url", "cx"]
