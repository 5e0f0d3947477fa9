"""Payload: the flat key/value map and its JSON fields."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any, Dict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snowplow_tracker.payload import Payload


def test_new_payload_is_empty() -> None:
    assert Payload().nv_pairs == {}


def test_init_copies_every_key_verbatim() -> None:
    source = {"a": 1, "b": None, "c": "", "d": "x"}
    payload = Payload(source)
    assert payload.nv_pairs == source
    assert payload.nv_pairs is not source
    payload.add("e", "y")
    assert "e" not in source


@pytest.mark.parametrize("value", [0, False, [], {}, 0.0, "0", b""])
def test_add_keeps_falsy_values_other_than_none_and_empty_string(value: Any) -> None:
    payload = Payload()
    payload.add("k", value)
    assert payload.nv_pairs == {"k": value}


@pytest.mark.parametrize("value", [None, ""])
def test_add_skips_none_and_empty_string(value: Any) -> None:
    payload = Payload({"k": "old"})
    payload.add("k", value)
    payload.add("other", value)
    assert payload.nv_pairs == {"k": "old"}


def test_add_dict_uses_add_rules_and_keeps_order() -> None:
    payload = Payload()
    payload.add_dict({"z": 1, "a": None, "m": "", "b": 0, "c": "v"}, base64=True)
    assert list(payload.nv_pairs.items()) == [("z", 1), ("b", 0), ("c", "v")]


def test_get_returns_the_dict_itself() -> None:
    payload = Payload()
    assert payload.get() is payload.nv_pairs


@pytest.mark.parametrize("value", [None, {}])
def test_add_json_ignores_none_and_empty(value: Any) -> None:
    payload = Payload()
    payload.add_json(value, True, "cx", "co")
    payload.add_json(value, False, "cx", "co")
    assert payload.nv_pairs == {}


def test_add_json_raw_uses_default_separators_and_keeps_unicode() -> None:
    payload = Payload()
    data = {"b": "żółć ✓", "a": [1, 2.5, True, None]}
    payload.add_json(data, False, "cx", "co")
    assert payload.nv_pairs == {"co": '{"b": "żółć ✓", "a": [1, 2.5, true, null]}'}


def test_add_json_base64_is_url_safe_with_padding() -> None:
    payload = Payload()
    data = {"x": "??>>"}  # encodes to bytes whose standard base64 holds "+" and "/"
    payload.add_json(data, True, "cx", "co")
    encoded = payload.nv_pairs["cx"]
    text = json.dumps(data, ensure_ascii=False)
    assert encoded == base64.urlsafe_b64encode(text.encode("utf-8")).decode()
    assert "+" not in encoded and "/" not in encoded
    assert encoded.endswith("=")
    assert "co" not in payload.nv_pairs


def test_add_json_base64_of_unicode_is_utf8() -> None:
    payload = Payload()
    payload.add_json({"k": "ć"}, True, "ue_px", "ue_pr")
    decoded = base64.urlsafe_b64decode(payload.nv_pairs["ue_px"]).decode("utf-8")
    assert decoded == '{"k": "ć"}'


def test_add_json_uses_the_custom_encoder() -> None:
    def encoder(value: Any) -> Any:
        if isinstance(value, datetime.date):
            return value.isoformat()
        raise TypeError(repr(value))

    payload = Payload()
    payload.add_json({"d": datetime.date(2024, 1, 2)}, False, "cx", "co", encoder)
    assert payload.nv_pairs["co"] == '{"d": "2024-01-02"}'


def test_add_json_switches_between_custom_encoders() -> None:
    payload = Payload()
    payload.add_json({"v": {1}}, False, "a", "a", lambda v: "first")
    payload.add_json({"v": {1}}, False, "b", "b", lambda v: "second")
    payload.add_json({"v": 1}, False, "c", "c")
    assert payload.nv_pairs == {"a": '{"v": "first"}', "b": '{"v": "second"}', "c": '{"v": 1}'}


def test_add_json_without_encoder_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        Payload().add_json({"d": datetime.date(2024, 1, 2)}, True, "cx", "co")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=5))
def test_add_json_matches_json_dumps(data: Any) -> None:
    try:
        expected = json.dumps(data, ensure_ascii=False)
        expected_bytes = expected.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be sent either way
        return
    payload = Payload()
    payload.add_json(data, False, "cx", "co")
    payload.add_json(data, True, "cx", "co")
    assert payload.nv_pairs["co"] == expected
    assert base64.urlsafe_b64decode(payload.nv_pairs["cx"]) == expected_bytes


def test_add_json_reports_a_reference_cycle_as_json_dumps_does() -> None:
    data: Dict[str, Any] = {"a": 1}
    data["self"] = data
    with pytest.raises(ValueError, match="Circular reference"):
        Payload().add_json(data, True, "cx", "co")
    with pytest.raises(ValueError, match="Circular reference"):
        Payload().add_json(data, False, "cx", "co", lambda v: str(v))


def test_add_json_with_a_custom_encoder_matches_json_dumps() -> None:
    data = {"when": datetime.date(2024, 1, 2), "n": [1.5, float("inf")], "s": "é\x00"}
    payload = Payload()
    payload.add_json(data, False, "cx", "co", str)
    assert payload.nv_pairs["co"] == json.dumps(data, ensure_ascii=False, default=str)
