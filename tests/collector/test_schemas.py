"""Schema registry: lookup order, Iglu directory layouts, caching, $ref, optional jsonschema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from snowplow_tracker.collector import SchemaRegistry
from snowplow_tracker.collector.schemas import BUILTIN_SCHEMA_DIR

from .helpers import ADD_TO_CART, LINK_CLICK, PAYLOAD_DATA

ACME = "iglu:com.acme/thing/jsonschema/1-0-0"
ACME_SCHEMA = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {"vendor": "com.acme", "name": "thing", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {"size": {"type": "integer", "minimum": 0}},
    "required": ["size"],
    "additionalProperties": False,
}


def write_schema(root: Path, uri: str, schema: Dict[str, Any]) -> Path:
    vendor, name, fmt, version = uri[len("iglu:") :].split("/")
    path = root / vendor / name / fmt / version
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def test_builtin_envelopes_ship_with_the_package() -> None:
    names = sorted(
        "/".join(p.parts[-3:]) for p in BUILTIN_SCHEMA_DIR.glob("*/*/jsonschema/*") if p.is_file()
    )
    assert names == [
        "contexts/jsonschema/1-0-0",
        "contexts/jsonschema/1-0-1",
        "payload_data/jsonschema/1-0-0",
        "payload_data/jsonschema/1-0-1",
        "payload_data/jsonschema/1-0-2",
        "payload_data/jsonschema/1-0-3",
        "payload_data/jsonschema/1-0-4",
        "unstruct_event/jsonschema/1-0-0",
    ]
    registry = SchemaRegistry()
    assert registry.source_of(PAYLOAD_DATA) == "builtin"
    assert registry.lookup(PAYLOAD_DATA)["self"]["version"] == "1-0-4"  # type: ignore[index]


def test_builtin_envelopes_win_over_iglu_directories(shared_iglu_dir: Path) -> None:
    registry = SchemaRegistry([shared_iglu_dir])
    assert registry.source_of(PAYLOAD_DATA) == "builtin"
    assert registry.source_of(LINK_CLICK) is not None
    assert registry.source_of(LINK_CLICK).endswith("link_click/jsonschema/1-0-1")  # type: ignore[union-attr]


def test_iglu_dir_may_be_the_repository_or_its_schemas_folder(shared_iglu_dir: Path) -> None:
    for directory in (shared_iglu_dir, shared_iglu_dir / "schemas"):
        registry = SchemaRegistry([directory])
        assert registry.iglu_roots == [(shared_iglu_dir / "schemas").resolve()]
        assert registry.lookup(ADD_TO_CART) is not None


def test_validation_reports_json_pointer_paths(tmp_path: Path) -> None:
    write_schema(tmp_path, ACME, ACME_SCHEMA)
    registry = SchemaRegistry([tmp_path])
    assert registry.validate(ACME, {"size": 3}) == ([], [], True)
    errors = registry.validate(ACME, {"size": -1, "other": True}).errors
    assert "jsonschema: -1 is less than the minimum of 0 at /data/size" in errors
    assert any("Additional properties are not allowed" in e for e in errors)


def test_missing_schema_is_an_error_or_a_note_in_lenient_mode(tmp_path: Path) -> None:
    strict = SchemaRegistry([tmp_path]).validate(ACME, {})
    assert not strict.found
    assert strict.errors[0].startswith(f"schema {ACME} not found (searched:")
    assert str(tmp_path.resolve()) in strict.errors[0]
    lenient = SchemaRegistry([tmp_path], lenient=True).validate(ACME, {})
    assert lenient.errors == [] and "lenient" in lenient.notes[0]


def test_added_schema_wins_and_clears_caches(tmp_path: Path) -> None:
    write_schema(tmp_path, ACME, ACME_SCHEMA)
    registry = SchemaRegistry([tmp_path])
    assert registry.validate(ACME, {"size": 1}).errors == []
    registry.add_schema(ACME, {**ACME_SCHEMA, "required": ["size", "colour"]})
    assert registry.source_of(ACME) == "added"
    assert registry.validate(ACME, {"size": 1}).errors == [
        "jsonschema: 'colour' is a required property at /data"
    ]


def test_add_schema_rejects_malformed_uris() -> None:
    with pytest.raises(ValueError):
        SchemaRegistry().add_schema("com.acme/thing", {})


def test_refs_to_iglu_uris_and_iglucentral_urls_resolve_locally(tmp_path: Path) -> None:
    write_schema(tmp_path, ACME, ACME_SCHEMA)
    wrapper = "iglu:com.acme/wrapper/jsonschema/1-0-0"
    write_schema(
        tmp_path,
        wrapper,
        {
            "type": "object",
            "properties": {
                "a": {"$ref": ACME},
                "b": {"$ref": "http://iglucentral.com/schemas/com.acme/thing/jsonschema/1-0-0#"},
            },
        },
    )
    registry = SchemaRegistry([tmp_path])
    assert registry.validate(wrapper, {"a": {"size": 1}, "b": {"size": 2}}).errors == []
    errors = registry.validate(wrapper, {"a": {}, "b": {"size": "x"}}).errors
    assert "jsonschema: 'size' is a required property at /data/a" in errors
    assert "jsonschema: 'x' is not of type 'integer' at /data/b/size" in errors


def test_unresolvable_ref_is_an_error_not_a_network_call(tmp_path: Path) -> None:
    uri = "iglu:com.acme/remote/jsonschema/1-0-0"
    write_schema(tmp_path, uri, {"$ref": "http://example.invalid/schema.json"})
    errors = SchemaRegistry([tmp_path]).validate(uri, {}).errors
    assert len(errors) == 1 and "could not be applied" in errors[0]


def test_unreadable_schema_file_makes_events_bad(tmp_path: Path) -> None:
    path = write_schema(tmp_path, ACME, {})
    path.write_text("{not json", encoding="utf-8")
    errors = SchemaRegistry([tmp_path]).validate(ACME, {}).errors
    assert len(errors) == 1 and "could not be read" in errors[0]


def test_formats_uuid_and_date_time_are_checked(tmp_path: Path) -> None:
    uri = "iglu:com.acme/formats/jsonschema/1-0-0"
    write_schema(
        tmp_path,
        uri,
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "at": {"type": "string", "format": "date-time"},
            },
        },
    )
    registry = SchemaRegistry([tmp_path])
    good = {"id": "0e2b4c1a-1111-4222-8333-944445555666", "at": "2024-01-02T03:04:05.678Z"}
    assert registry.validate(uri, good).errors == []
    errors = registry.validate(uri, {"id": "nope", "at": "yesterday"}).errors
    assert len(errors) == 2


def test_without_jsonschema_envelopes_are_still_checked_and_schemas_are_skipped(
    shared_iglu_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    registry = SchemaRegistry([shared_iglu_dir])
    assert registry.jsonschema_available is False
    outcome = registry.validate(ADD_TO_CART, {"quantity": "not even an int"})
    assert outcome.errors == []
    assert outcome.notes == [f"schema {ADD_TO_CART} not checked: jsonschema is not installed"]
    assert registry.validate(PAYLOAD_DATA, [{"e": "pv", "p": "web"}]).errors == [
        "data[0]: missing required field 'tv'"
    ]
    assert "not found" in registry.validate("iglu:com.acme/x/jsonschema/1-0-0", {}).errors[0]


def test_payload_data_envelope_messages(shared_iglu_dir: Path) -> None:
    registry = SchemaRegistry()
    assert registry.validate(PAYLOAD_DATA, []).errors == [
        "'data' is an empty array (at least one event is required)"
    ]
    assert registry.validate(PAYLOAD_DATA, {}).errors == [
        "'data' must be an array of events, got object"
    ]
    errors = registry.validate(
        PAYLOAD_DATA, [{"e": "pv", "p": "web", "tv": "t", "dtm": 5, "aid": None, "zz": "1"}, 3]
    ).errors
    assert errors == [
        "data[0]: value of 'dtm' is not a string (got number)",
        "data[0]: value of 'aid' cannot be null",
        "data[0]: unknown field 'zz' (not allowed by payload_data 1-0-4)",
        "data[1] is not an object (got number)",
    ]
    old = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-3"
    assert (
        "unknown field 'ttm'"
        in registry.validate(old, [{"e": "pv", "p": "web", "tv": "t", "ttm": "1"}]).errors[0]
    )
