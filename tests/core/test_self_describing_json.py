"""SelfDescribingJson."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from snowplow_tracker import contracts
from snowplow_tracker.self_describing_json import SelfDescribingJson

SCHEMA = "iglu:com.acme/thing/jsonschema/1-0-0"


def test_to_json_orders_schema_then_data() -> None:
    sdj = SelfDescribingJson(SCHEMA, {"a": 1})
    assert list(sdj.to_json().items()) == [("schema", SCHEMA), ("data", {"a": 1})]


def test_to_string_uses_default_json_settings() -> None:
    sdj = SelfDescribingJson(SCHEMA, {"k": "ć"})
    assert sdj.to_string() == json.dumps({"schema": SCHEMA, "data": {"k": "ć"}})
    assert "\\u0107" in sdj.to_string()


def test_data_may_be_a_list() -> None:
    sdj = SelfDescribingJson(SCHEMA, [{"a": 1}, {"b": 2}])
    assert sdj.to_json()["data"] == [{"a": 1}, {"b": 2}]


def test_schema_and_data_are_writable() -> None:
    sdj = SelfDescribingJson(SCHEMA, {})
    sdj.schema = "iglu:x/y/jsonschema/2-0-0"
    sdj.data = {"z": 0}
    assert sdj.to_json() == {"schema": "iglu:x/y/jsonschema/2-0-0", "data": {"z": 0}}


@pytest.mark.parametrize("schema", ["", None, 123])
def test_schema_must_be_a_non_empty_string(schema: Any) -> None:
    with pytest.raises(ValueError, match=r"^schema is empty\.$"):
        SelfDescribingJson(schema, {})


def test_schema_is_not_checked_when_contracts_are_disabled() -> None:
    contracts.disable_contracts()
    assert SelfDescribingJson("", {}).schema == ""


def test_subclasses_can_compute_their_data() -> None:
    class Lazy(SelfDescribingJson):
        def __init__(self) -> None:
            super().__init__(SCHEMA, {})

        def to_json(self) -> Dict[str, Any]:
            return {"schema": self.schema, "data": {"computed": True}}

    assert json.loads(Lazy().to_string())["data"] == {"computed": True}


def test_repr_mentions_schema() -> None:
    assert SCHEMA in repr(SelfDescribingJson(SCHEMA, {}))


def test_a_subclass_schema_property_is_used_by_the_constructor() -> None:
    class Lowered(SelfDescribingJson):
        @property
        def schema(self) -> str:
            return self._lowered

        @schema.setter
        def schema(self, value: str) -> None:
            self._lowered = value.lower()

    entity = Lowered("iglu:COM.ACME/X/jsonschema/1-0-0", {"a": 1})
    assert entity.to_json() == {"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": {"a": 1}}
