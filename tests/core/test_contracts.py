"""Contracts: message shapes, and that disabling them disables every check."""

from __future__ import annotations

from typing import Any

import pytest

from snowplow_tracker import contracts, disable_contracts, enable_contracts
from snowplow_tracker.contracts import (
    _check_form_element,
    contracts_enabled,
    form_element,
    greater_than,
    non_empty,
    non_empty_string,
    one_of,
    satisfies,
)


def test_toggle() -> None:
    assert contracts_enabled() is True
    disable_contracts()
    assert contracts_enabled() is False
    assert contracts._CONTRACTS_ENABLED is False
    enable_contracts()
    assert contracts_enabled() is True


def test_greater_than() -> None:
    greater_than(1, 0, name="width")
    with pytest.raises(ValueError, match=r"^width must be greater than 0\.$"):
        greater_than(0, 0, name="width")
    with pytest.raises(TypeError, match="width"):
        greater_than("10", 0, name="width")  # type: ignore[arg-type]


def test_non_empty() -> None:
    non_empty([1], name="terms")
    with pytest.raises(ValueError, match=r"^terms is empty\.$"):
        non_empty([], name="terms")
    with pytest.raises(TypeError, match="terms"):
        non_empty(5, name="terms")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", None, 123, b"x", ["a"]])
def test_non_empty_string_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^page_url is empty\.$"):
        non_empty_string(value, name="page_url")


def test_non_empty_string_accepts_strings() -> None:
    non_empty_string("x", name="page_url")


def test_one_of() -> None:
    one_of("pc", {"pc", "tv"}, name="value")
    with pytest.raises(ValueError, match=r"^value is not supported\.$"):
        one_of("xx", {"pc", "tv"}, name="value")
    with pytest.raises(ValueError, match=r"^value is not supported\.$"):
        one_of(["unhashable"], {"pc"}, name="value")


def test_satisfies() -> None:
    satisfies(3, lambda v: v > 2, name="n")
    with pytest.raises(ValueError, match=r"^n is not allowed\.$"):
        satisfies(1, lambda v: v > 2, name="n")


def test_default_name() -> None:
    with pytest.raises(ValueError, match=r"^Unnamed parameter is empty\.$"):
        non_empty_string("")


GOOD = {"name": "f", "value": "v", "nodeName": "INPUT"}


@pytest.mark.parametrize(
    "element",
    [GOOD, {**GOOD, "type": "text"}, {**GOOD, "nodeName": "SELECT", "value": None}],
)
def test_check_form_element_accepts(element: Any) -> None:
    assert _check_form_element(element) is True
    form_element(element)


@pytest.mark.parametrize(
    "element",
    [
        None,
        "x",
        {"name": "f", "value": "v"},
        {"value": "v", "nodeName": "INPUT"},
        {**GOOD, "nodeName": "input"},
        {**GOOD, "type": "TEXT"},
        {**GOOD, "type": "banana"},
        {**GOOD, "nodeName": ["unhashable"]},
    ],
)
def test_check_form_element_rejects(element: Any) -> None:
    assert _check_form_element(element) is False
    with pytest.raises(ValueError, match=r"^element is not allowed\.$"):
        form_element(element)


def test_disabled_contracts_check_nothing() -> None:
    disable_contracts()
    greater_than(0, 0, name="w")
    greater_than("x", 0, name="w")  # type: ignore[arg-type]
    non_empty([], name="t")
    non_empty(5, name="t")  # type: ignore[arg-type]
    non_empty_string("", name="s")
    non_empty_string(None, name="s")
    one_of("zz", {"pc"}, name="v")
    satisfies(1, lambda v: False, name="n")
    form_element(None)
