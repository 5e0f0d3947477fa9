"""Unit tests of the tracker-protocol checks and decoding (no HTTP)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict

import pytest

from snowplow_tracker.collector import EventValidator, ProtocolError, SchemaKey, SchemaRegistry
from snowplow_tracker.collector.protocol import (
    check_content_type,
    decode_base64_json,
    decode_query,
    iso_from_ms,
    parse_bool01,
    parse_decimal,
    parse_dimensions,
    parse_int,
    parse_ms_epoch,
    parse_post_body,
    parse_uuid,
)
from snowplow_tracker.collector.validation import RequestContext, render_event

from .helpers import (
    ADD_TO_CART,
    CONTEXTS_100,
    LINK_CLICK,
    PAYLOAD_DATA,
    WEB_PAGE,
    b64,
    contexts,
    link_click,
    page_view,
    sdj,
    unstruct,
    web_page,
)


@pytest.fixture(scope="module")
def validator(shared_iglu_dir: Path) -> EventValidator:
    return EventValidator(SchemaRegistry([shared_iglu_dir]))


def test_schema_key_parses_well_formed_iglu_uris() -> None:
    key = SchemaKey.parse("iglu:com.acme-1/my_event/jsonschema/2-0-11")
    assert key == ("com.acme-1", "my_event", "jsonschema", "2-0-11")
    assert key.uri == "iglu:com.acme-1/my_event/jsonschema/2-0-11"
    assert key.model == 2


@pytest.mark.parametrize(
    "uri",
    [
        "com.acme/x/jsonschema/1-0-0",
        "iglu:com.acme/x/jsonschema/1-0",
        "iglu:com.acme/x/jsonschema/1-0-0\n",
        "iglu:com.acme/x/avro/1-0-0",
        "iglu:com acme/x/jsonschema/1-0-0",
        "iglu:com.acme/x/jsonschema/1-0-0/extra",
        42,
    ],
)
def test_schema_key_rejects_malformed_uris(uri: object) -> None:
    with pytest.raises(ValueError):
        SchemaKey.parse(uri)


def test_uuid_is_canonical_and_lower_cased() -> None:
    assert (
        parse_uuid("0E2B4C1A-1111-4222-8333-944445555666") == "0e2b4c1a-1111-4222-8333-944445555666"
    )
    for bad in ("0e2b4c1a11114222833394444555566", "0e2b4c1a-1111-4222-8333-94444555566g", ""):
        with pytest.raises(ValueError, match="UUID"):
            parse_uuid(bad)


def test_integers_are_32_bit() -> None:
    assert parse_int("-12") == -12
    assert parse_int("2147483647") == 2147483647
    for bad in ("2147483648", "1.0", "", "12a", "0x10"):
        with pytest.raises(ValueError):
            parse_int(bad)


def test_decimals_accept_null_and_reject_nan() -> None:
    assert parse_decimal("1.5") == 1.5
    assert parse_decimal("-.5e2") == -50.0
    assert parse_decimal("null") is None
    for bad in ("NaN", "Infinity", "1,5", "", "abc"):
        with pytest.raises(ValueError):
            parse_decimal(bad)


def test_bool01_only_accepts_one_and_zero() -> None:
    assert parse_bool01("1") is True
    assert parse_bool01("0") is False
    for bad in ("true", "yes", "2", ""):
        with pytest.raises(ValueError):
            parse_bool01(bad)


def test_timestamps_are_epoch_milliseconds_in_years_1_to_9999() -> None:
    assert parse_ms_epoch("1700000000123") == 1700000000123
    assert iso_from_ms(1700000000123) == "2023-11-14T22:13:20.123Z"
    assert iso_from_ms(0) == "1970-01-01T00:00:00.000Z"
    for bad in ("1700000000.5", "soon", "999999999999999999", ""):
        with pytest.raises(ValueError):
            parse_ms_epoch(bad)


def test_dimensions_are_width_x_height() -> None:
    assert parse_dimensions("1920x1080") == (1920, 1080)
    for bad in ("1920*1080", "1920x", "x1080", "-1x2", "99999999999x1"):
        with pytest.raises(ValueError):
            parse_dimensions(bad)


def test_base64_json_accepts_url_safe_standard_and_unpadded() -> None:
    value = {"k": "é?>>~~~"}
    raw = json.dumps(value).encode()
    assert decode_base64_json(base64.urlsafe_b64encode(raw).decode()) == value
    assert decode_base64_json(base64.b64encode(raw).decode()) == value
    assert decode_base64_json(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == value


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("not base64!", "is not valid base64"),
        ("abcde", "is not valid base64"),
        (base64.b64encode(b"\xff\xfe{}").decode(), "is not valid UTF-8"),
        (base64.b64encode(b"{not json").decode(), "is not valid JSON"),
        (base64.b64encode(b'{"a": NaN}').decode(), "is not valid JSON"),
    ],
)
def test_base64_json_failures_say_why(encoded: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_base64_json(encoded)


def test_query_strings_decode_percent_and_plus_and_last_duplicate_wins() -> None:
    assert decode_query("a=1&b=x+y%2Fz&a=2&c=") == {"a": "2", "b": "x y/z", "c": ""}
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_query("a=%ff")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"],
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/json; charset=latin-1", "application/x-www-form-urlencoded"],
)
def test_other_content_types_are_rejected(content_type: object) -> None:
    with pytest.raises(ProtocolError, match="Content-Type"):
        check_content_type(content_type)  # type: ignore[arg-type]


def test_post_body_must_be_a_payload_data_envelope() -> None:
    good = json.dumps({"schema": PAYLOAD_DATA, "data": [{"e": "pv"}]}).encode()
    assert parse_post_body(good, "application/json") == (PAYLOAD_DATA, [{"e": "pv"}])
    cases = {
        b"\xff": "not valid UTF-8",
        b"{": "not valid JSON",
        b"[1]": "not a self-describing JSON",
        json.dumps({"schema": PAYLOAD_DATA}).encode(): "not a self-describing JSON",
        json.dumps({"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": []}).encode(): (
            "is not iglu:com.snowplowanalytics.snowplow/payload_data"
        ),
        json.dumps(
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/2-0-0",
                "data": [],
            }
        ).encode(): "payload_data/jsonschema/1-0-*",
    }
    for raw, reason in cases.items():
        with pytest.raises(ProtocolError, match=reason.replace("*", r"\*")):
            parse_post_body(raw, "application/json")


def test_valid_page_view_passes(validator: EventValidator) -> None:
    check = validator.check(page_view(res="1920x1080", cookie="1", vid="3", se_va="null"))
    assert check.errors == []
    assert check.event_type == "page_view"
    assert check.schema == "iglu:com.snowplowanalytics.snowplow/page_view/jsonschema/1-0-0"


@pytest.mark.parametrize("field", ["e", "p", "tv"])
def test_missing_required_fields_are_named(validator: EventValidator, field: str) -> None:
    params = page_view()
    del params[field]
    assert f"missing required field '{field}'" in validator.check(params).errors


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"e": "xx"}, "unknown event type code 'xx'"),
        ({"p": "desktop"}, "unknown platform 'desktop'"),
        ({"eid": "123"}, "field 'eid' is not a valid UUID"),
        ({"sid": "abc"}, "field 'sid' is not a valid UUID"),
        ({"dtm": "yesterday"}, "field 'dtm' is not a timestamp in milliseconds"),
        ({"stm": "1.5"}, "field 'stm' is not a timestamp"),
        ({"ttm": "99999999999999999"}, "field 'ttm' is a timestamp outside years"),
        ({"vid": "first"}, "field 'vid' is not an integer"),
        ({"se_va": "lots"}, "field 'se_va' is not a decimal number"),
        ({"cookie": "yes"}, "field 'cookie' must be '1' or '0'"),
        ({"res": "big"}, "field 'res' is not of the form WIDTHxHEIGHT"),
        ({"tr_cu": "EURO"}, "field 'tr_cu' (tr_currency) is longer than 3 characters"),
        ({"ue_px": "%%%"}, "ue_px is not valid base64"),
        ({"cx": "%%%"}, "cx is not valid base64"),
        ({"co": "{oops"}, "co is not valid JSON"),
        ({"ue_pr": "[]"}, "ue_pr is not a self-describing JSON"),
    ],
)
def test_bad_values_are_reported_clearly(
    validator: EventValidator, extra: Dict[str, str], reason: str
) -> None:
    errors = validator.check(page_view(**extra)).errors
    assert any(reason in error for error in errors), errors


def test_self_describing_event_is_decoded_and_validated(validator: EventValidator) -> None:
    entity = web_page()
    check = validator.check(link_click(cx=b64(contexts(entity))))
    assert check.errors == []
    assert check.event_type == "unstruct"
    assert check.schema == LINK_CLICK
    assert check.contexts == [WEB_PAGE]
    assert check.unstruct == unstruct(LINK_CLICK, {"targetUrl": "https://example.com/next"})
    assert check.contexts_json == contexts(entity)


def test_plain_json_fields_work_like_base64_ones(validator: EventValidator) -> None:
    params = {
        "e": "ue",
        "p": "web",
        "tv": "t",
        "ue_pr": json.dumps(unstruct(ADD_TO_CART, {"sku": "s", "quantity": 1})),
        "co": json.dumps(contexts(web_page())),
    }
    check = validator.check(params)
    assert check.errors == [] and check.schema == ADD_TO_CART and check.contexts == [WEB_PAGE]


def test_schema_violations_name_the_property_and_path(validator: EventValidator) -> None:
    check = validator.check(link_click(ue_px=b64(unstruct(ADD_TO_CART, {"quantity": 1}))))
    assert check.errors == [
        "ue_px: iglu:com.snowplowanalytics.snowplow/add_to_cart/jsonschema/1-0-0: "
        "jsonschema: 'sku' is a required property at /data"
    ]


def test_unknown_schema_is_an_error_unless_lenient(shared_iglu_dir: Path) -> None:
    params = link_click(ue_px=b64(unstruct("iglu:com.acme/x/jsonschema/1-0-0", {})))
    strict = EventValidator(SchemaRegistry([shared_iglu_dir])).check(params)
    assert len(strict.errors) == 1
    assert "schema iglu:com.acme/x/jsonschema/1-0-0 not found" in strict.errors[0]
    lenient = EventValidator(SchemaRegistry([shared_iglu_dir], lenient=True)).check(params)
    assert lenient.errors == []
    assert "accepted (lenient mode)" in lenient.notes[0]


def test_envelopes_must_have_the_right_schema(validator: EventValidator) -> None:
    wrong_ue = b64(sdj("iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1", []))
    errors = validator.check(link_click(ue_px=wrong_ue)).errors
    assert any("ue_px must hold a unstruct_event envelope" in e for e in errors)
    wrong_cx = b64(unstruct(LINK_CLICK, {"targetUrl": "x"}))
    errors = validator.check(page_view(cx=wrong_cx)).errors
    assert any("cx must hold a contexts envelope" in e for e in errors)


def test_contexts_1_0_0_needs_an_entity_but_1_0_1_does_not(validator: EventValidator) -> None:
    assert validator.check(page_view(cx=b64(contexts()))).errors == []
    errors = validator.check(page_view(cx=b64(contexts(envelope=CONTEXTS_100)))).errors
    assert any("empty array" in e for e in errors)


def test_entity_with_bad_uri_or_extra_keys_is_rejected(validator: EventValidator) -> None:
    entity: Dict[str, Any] = {"schema": "iglu:bad uri", "data": {}}
    errors = validator.check(page_view(cx=b64(contexts(entity)))).errors
    assert any("is not a valid Iglu URI" in e for e in errors)
    entity = {**web_page(), "extra": 1}
    errors = validator.check(page_view(cx=b64(contexts(entity)))).errors
    assert any("unexpected keys ['extra']" in e for e in errors)


def test_ue_event_without_payload_is_bad(validator: EventValidator) -> None:
    errors = validator.check({"e": "ue", "p": "web", "tv": "t"}).errors
    assert errors == ["self-describing event (e=ue) has no ue_pr or ue_px"]


def test_rendered_event_uses_atomic_names_and_decoded_values(validator: EventValidator) -> None:
    params = page_view(
        dtm="1700000000000",
        stm="1700000001000",
        res="800x600",
        vp="640x480",
        cookie="1",
        se_va="2.5",
        tnuid="tracker-nuid",
        nuid="ignored",
        ip="10.0.0.1, 10.0.0.2",
        url="https://shop.example:8443/a/b?x=1#frag",
        page="Title",
        lang="en",
        uid="user",
    )
    ctx = RequestContext(
        timestamp_ms=1700000005000,
        api_vendor="com.snowplowanalytics.snowplow",
        api_version="tp2",
        ip_address="127.0.0.1",
        useragent="agent",
        network_userid="collector-nuid",
    )
    event = render_event(params, validator.check(params), ctx)
    assert event["event"] == "page_view"
    assert event["app_id"] == "test-app"
    assert event["platform"] == "web"
    assert event["dvce_created_tstamp"] == "2023-11-14T22:13:20.000Z"
    assert event["dvce_sent_tstamp"] == "2023-11-14T22:13:21.000Z"
    assert event["collector_tstamp"] == "2023-11-14T22:13:25.000Z"
    assert event["derived_tstamp"] == "2023-11-14T22:13:24.000Z"
    assert (event["dvce_screenwidth"], event["dvce_screenheight"]) == (800, 600)
    assert (event["br_viewwidth"], event["br_viewheight"]) == (640, 480)
    assert event["br_cookies"] is True
    assert event["se_value"] == 2.5
    assert event["network_userid"] == "tracker-nuid"
    assert event["user_ipaddress"] == "10.0.0.1"
    assert event["useragent"] == "agent"
    assert event["page_urlhost"] == "shop.example"
    assert event["page_urlport"] == 8443
    assert event["page_urlpath"] == "/a/b"
    assert event["page_urlquery"] == "x=1"
    assert event["page_urlfragment"] == "frag"
    assert event["page_title"] == "Title"
    assert event["br_lang"] == "en"
    assert event["user_id"] == "user"
    assert event["event_vendor"] == "com.snowplowanalytics.snowplow"
    assert event["event_name"] == "page_view"
    assert event["event_version"] == "1-0-0"


def test_true_timestamp_becomes_the_derived_timestamp(validator: EventValidator) -> None:
    params = page_view(ttm="1600000000000")
    ctx = RequestContext(timestamp_ms=1700000000000, api_vendor="v", api_version="tp2")
    event = render_event(params, validator.check(params), ctx)
    assert event["true_tstamp"] == event["derived_tstamp"] == "2020-09-13T12:26:40.000Z"
