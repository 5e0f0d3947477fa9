"""Cross-check against the published Iglu schemas (../shared/iglu) with hypothesis.

Whatever ``jsonschema`` plus the published schemas accept must come out good from the
collector, and whatever they reject must come out bad. The collector's own envelope schemas
(and its direct envelope checks) must agree with the published envelopes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import jsonschema
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snowplow_tracker.collector import LocalCollector, SchemaRegistry
from snowplow_tracker.collector.schemas import BUILTIN_SCHEMA_DIR

from .helpers import (
    ADD_TO_CART,
    CONTEXTS,
    CONTEXTS_100,
    LINK_CLICK,
    TP2,
    UNSTRUCT,
    WEB_PAGE,
    b64,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VENDOR = "com.snowplowanalytics.snowplow"
REMOVE_FROM_CART = f"iglu:{VENDOR}/remove_from_cart/jsonschema/1-0-0"
SITE_SEARCH = f"iglu:{VENDOR}/site_search/jsonschema/1-0-0"
GEO = f"iglu:{VENDOR}/geolocation_context/jsonschema/1-1-0"
UNKNOWN = "iglu:com.acme/unknown/jsonschema/1-0-0"
VERSIONS = [f"1-0-{minor}" for minor in range(5)]
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Oracle:
    """Validates with jsonschema's Draft4Validator and the published schema files only."""

    def __init__(self, root: Path) -> None:
        self.root = root / "schemas"
        self._cache: Dict[str, Optional[Any]] = {}

    def validator(self, uri: str) -> Optional[Any]:
        if uri not in self._cache:
            path = self.root / uri[len("iglu:") :]
            if not uri.startswith("iglu:") or not path.is_file():
                self._cache[uri] = None
            else:
                self._cache[uri] = jsonschema.Draft4Validator(json.loads(path.read_text()))
        return self._cache[uri]

    def valid(self, uri: str, instance: Any) -> bool:
        validator = self.validator(uri)
        return validator is not None and validator.is_valid(instance)

    def self_describing_ok(self, document: Any, expected: Tuple[str, ...]) -> bool:
        """An envelope: ``{schema, data}`` naming one of ``expected``, valid against it."""
        return (
            isinstance(document, dict)
            and "data" in document
            and document.get("schema") in expected
            and self.valid(document["schema"], document["data"])
        )

    def unstruct_ok(self, envelope: Any) -> bool:
        if not self.self_describing_ok(envelope, (UNSTRUCT,)):
            return False
        inner = envelope["data"]
        return self.valid(inner["schema"], inner["data"])

    def contexts_ok(self, envelope: Any) -> bool:
        if not self.self_describing_ok(envelope, (CONTEXTS, CONTEXTS_100)):
            return False
        return all(self.valid(entity["schema"], entity["data"]) for entity in envelope["data"])


@pytest.fixture(scope="module")
def oracle(shared_iglu_dir: Path) -> Oracle:
    return Oracle(shared_iglu_dir)


@pytest.fixture(scope="module")
def module_collector(shared_iglu_dir: Path) -> Iterator[LocalCollector]:
    with LocalCollector(iglu_dirs=[shared_iglu_dir]) as running:
        yield running


# --- strategies -----------------------------------------------------------------------------

short_text = st.text(max_size=6)
numbers = st.one_of(st.integers(-5, 200), st.floats(-200, 200, allow_nan=False, width=32))
maybe_extra = st.sampled_from([{}, {}, {}, {"unexpected": 1}])


def with_extra(base: st.SearchStrategy[Dict[str, Any]]) -> st.SearchStrategy[Dict[str, Any]]:
    return st.builds(lambda data, extra: {**data, **extra}, base, maybe_extra)


cart = st.fixed_dictionaries(
    {},
    optional={
        "sku": st.one_of(short_text, st.none()),
        "quantity": st.one_of(numbers, short_text),
        "unitPrice": st.one_of(numbers, short_text),
        "name": short_text,
        "currency": short_text,
    },
)
event_data = {
    LINK_CLICK: with_extra(
        st.fixed_dictionaries(
            {},
            optional={
                "targetUrl": st.sampled_from(["https://x.example/next", "", "a"]),
                "elementId": st.one_of(short_text, st.integers()),
                "elementClasses": st.lists(st.one_of(short_text, st.integers()), max_size=2),
            },
        )
    ),
    ADD_TO_CART: with_extra(cart),
    REMOVE_FROM_CART: with_extra(cart),
    SITE_SEARCH: with_extra(
        st.fixed_dictionaries(
            {},
            optional={
                "terms": st.lists(st.one_of(short_text, st.integers()), max_size=2),
                "totalResults": st.one_of(st.integers(-3, 10), short_text),
            },
        )
    ),
    UNKNOWN: st.just({}),
}
self_describing_event = st.sampled_from(sorted(event_data)).flatmap(
    lambda schema: event_data[schema].map(lambda data: {"schema": schema, "data": data})
)
wrap_unstruct = self_describing_event.map(lambda inner: {"schema": UNSTRUCT, "data": inner})
unstruct_envelope = st.one_of(
    wrap_unstruct,
    wrap_unstruct,
    wrap_unstruct,
    self_describing_event.map(lambda inner: {"schema": CONTEXTS, "data": [inner]}),
    self_describing_event.map(lambda inner: {"schema": UNSTRUCT, "data": {**inner, "extra": True}}),
    self_describing_event.map(lambda inner: {"schema": UNSTRUCT, "data": inner["data"]}),
)

valid_web_page = st.uuids().map(lambda u: {"schema": WEB_PAGE, "data": {"id": str(u)}})
entity = st.one_of(
    valid_web_page,
    valid_web_page,
    with_extra(st.fixed_dictionaries({"id": st.one_of(st.uuids().map(str), short_text)})).map(
        lambda data: {"schema": WEB_PAGE, "data": data}
    ),
    with_extra(
        st.fixed_dictionaries(
            {},
            optional={
                "latitude": st.one_of(numbers, short_text),
                "longitude": numbers,
                "speed": st.one_of(numbers, st.none()),
            },
        )
    ).map(lambda data: {"schema": GEO, "data": data}),
    st.just({"schema": UNKNOWN, "data": {}}),
    st.just({"schema": "iglu:com.acme/x/jsonschema/1-0", "data": {}}),
    st.just({"schema": WEB_PAGE}),
    st.uuids().map(lambda u: {"schema": WEB_PAGE, "data": {"id": str(u)}, "more": 1}),
)
contexts_envelope = st.builds(
    lambda version, entities: {"schema": version, "data": entities},
    st.sampled_from([CONTEXTS, CONTEXTS_100]),
    st.lists(entity, max_size=3),
)


@st.composite
def tracker_event(draw: st.DrawFn) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(parameters, decoded documents) of one event; protocol fields are always valid."""
    eid = str(draw(st.uuids()))
    params: Dict[str, Any] = {"p": draw(st.sampled_from(["web", "srv", "mob"])), "tv": "py-1.1.0"}
    params["eid"] = eid
    decoded: Dict[str, Any] = {}
    if draw(st.booleans()):
        envelope = draw(unstruct_envelope)
        decoded["ue"] = envelope
        params["e"] = "ue"
        if draw(st.booleans()):
            params["ue_px"] = b64(envelope, pad=draw(st.booleans()))
        else:
            params["ue_pr"] = json.dumps(envelope)
    else:
        params["e"] = draw(st.sampled_from(["pv", "se"]))
        if params["e"] == "se":
            params.update(se_ca="cat", se_ac="act")
    if draw(st.booleans()):
        envelope = draw(contexts_envelope)
        decoded["cx"] = envelope
        if draw(st.booleans()):
            params["cx"] = b64(envelope, pad=draw(st.booleans()))
        else:
            params["co"] = json.dumps(envelope)
    optional = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "ua": st.just("agent"),
                "tnuid": st.just("network-id"),
                "sid": st.uuids().map(str),
                "stm": st.just("1700000000000"),
                "ttm": st.just("1700000000001"),
                "aid": st.just("app"),
                "url": st.just("https://example.com/"),
            },
        )
    )
    params.update(optional)
    return params, decoded


ENVELOPE_BREAKERS = st.sampled_from(
    ["unknown key", "number value", "null value", "boolean value", "missing tv", "missing p"]
)


@st.composite
def payload(draw: st.DrawFn) -> Tuple[str, List[Tuple[Dict[str, Any], Dict[str, Any]]]]:
    """A payload_data version and its events; about one in six breaks the envelope."""
    version = draw(st.sampled_from(VERSIONS))
    events = draw(st.lists(tracker_event(), min_size=1, max_size=4))
    minor = int(version[-1])
    too_new = {"ua": 1, "tnuid": 2, "sid": 3, "stm": 3, "ttm": 4}
    if draw(st.integers(0, 7)) != 5:  # mostly: keep only keys the version knows
        for params, _ in events:
            for key, since in too_new.items():
                if minor < since:
                    params.pop(key, None)
    if draw(st.integers(0, 5)) == 3:
        params = draw(st.sampled_from([p for p, _ in events]))
        breaker = draw(ENVELOPE_BREAKERS)
        if breaker == "unknown key":
            params["zz_unknown"] = "1"
        elif breaker.endswith("value"):
            params["aid"] = {"number value": 3, "null value": None, "boolean value": True}[breaker]
        else:
            del params[breaker.split()[1]]
    if draw(st.integers(0, 30)) == 17:
        events = []
    return version, events


# --- the properties -------------------------------------------------------------------------


@SETTINGS
@given(payload=payload())
def test_collector_verdicts_match_jsonschema_with_published_schemas(
    module_collector: LocalCollector, oracle: Oracle, payload: Tuple[str, List[Any]]
) -> None:
    version, events = payload
    params = [p for p, _ in events]
    module_collector.reset()
    document: Dict[str, Any] = {
        "schema": f"iglu:{VENDOR}/payload_data/jsonschema/{version}",
        "data": params,
    }
    with requests.Session() as http:
        response = http.post(module_collector.url(TP2), json=document, timeout=10)
    assert response.status_code == 200
    good = {g["event"]["event_id"]: g for g in module_collector.good()}
    bad = module_collector.bad()

    if not oracle.valid(document["schema"], params):
        assert good == {}
        assert len(bad) == 1 and bad[0]["rawEvent"] is None, bad
        return

    expected_good = []
    for event, decoded in events:
        ok = ("ue" not in decoded or oracle.unstruct_ok(decoded["ue"])) and (
            "cx" not in decoded or oracle.contexts_ok(decoded["cx"])
        )
        if ok:
            expected_good.append(event["eid"])
    assert sorted(good) == sorted(expected_good), [b["errors"] for b in bad]
    assert len(bad) == len(events) - len(expected_good)
    for event, decoded in events:
        if event["eid"] not in good:
            continue
        result = good[event["eid"]]
        assert result["rawEvent"]["parameters"] == event
        assert result["event"]["unstruct_event"] == decoded.get("ue")
        assert result["event"]["contexts"] == decoded.get("cx")
        if "ue" in decoded:
            assert result["eventType"] == "unstruct"
            assert result["schema"] == decoded["ue"]["data"]["schema"]
        contexts = decoded.get("cx", {}).get("data", [])
        assert result["contexts"] == [entity["schema"] for entity in contexts]


def _published(root: Path, name: str, version: str) -> Any:
    path = root / "schemas" / VENDOR / name / "jsonschema" / version
    return json.loads(path.read_text())


def _ours(name: str, version: str) -> Any:
    return json.loads((BUILTIN_SCHEMA_DIR / VENDOR / name / "jsonschema" / version).read_text())


scalar = st.one_of(
    st.text(max_size=3), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False)
)
payload_keys = st.sampled_from(
    ["e", "p", "tv", "aid", "dtm", "ua", "tnuid", "sid", "stm", "ttm", "cx", "zz", "mac", "cv"]
)
payload_items = st.lists(
    st.one_of(st.dictionaries(payload_keys, scalar, max_size=6), scalar), max_size=3
)
envelope_uri = st.sampled_from(
    [
        LINK_CLICK,
        "iglu:a.b/c-d/jsonschema/10-2-3",
        "iglu:x/y/jsonschema/1-0",
        "nope",
        "iglu:a_b/c/e/1-0-0",
    ]
)
any_entity = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "schema": st.one_of(envelope_uri, st.integers()),
            "data": scalar,
            "other": scalar,
        },
    ),
    scalar,
)


@SETTINGS
@given(instance=st.one_of(payload_items, scalar), version=st.sampled_from(VERSIONS))
def test_own_payload_data_schemas_agree_with_published(
    shared_iglu_dir: Path, instance: Any, version: str
) -> None:
    published = jsonschema.Draft4Validator(_published(shared_iglu_dir, "payload_data", version))
    ours = jsonschema.Draft4Validator(_ours("payload_data", version))
    expected = published.is_valid(instance)
    assert ours.is_valid(instance) == expected
    uri = f"iglu:{VENDOR}/payload_data/jsonschema/{version}"
    assert (SchemaRegistry().validate(uri, instance).errors == []) == expected


@SETTINGS
@given(
    instance=st.one_of(st.lists(any_entity, max_size=3), any_entity),
    version=st.sampled_from(["1-0-0", "1-0-1"]),
)
def test_own_contexts_schemas_agree_with_published(
    shared_iglu_dir: Path, instance: Any, version: str
) -> None:
    published = jsonschema.Draft4Validator(_published(shared_iglu_dir, "contexts", version))
    ours = jsonschema.Draft4Validator(_ours("contexts", version))
    expected = published.is_valid(instance)
    assert ours.is_valid(instance) == expected
    uri = f"iglu:{VENDOR}/contexts/jsonschema/{version}"
    assert (SchemaRegistry().validate(uri, instance).errors == []) == expected


@SETTINGS
@given(instance=any_entity)
def test_own_unstruct_event_schema_agrees_with_published(
    shared_iglu_dir: Path, instance: Any
) -> None:
    published = jsonschema.Draft4Validator(_published(shared_iglu_dir, "unstruct_event", "1-0-0"))
    ours = jsonschema.Draft4Validator(_ours("unstruct_event", "1-0-0"))
    expected = published.is_valid(instance)
    assert ours.is_valid(instance) == expected
    assert (SchemaRegistry().validate(UNSTRUCT, instance).errors == []) == expected


def test_every_known_payload_key_is_allowed_by_the_matching_version(shared_iglu_dir: Path) -> None:
    for version in VERSIONS:
        published = _published(shared_iglu_dir, "payload_data", version)["items"]["properties"]
        ours = _ours("payload_data", version)["items"]["properties"]
        assert set(ours) == set(published)
        assert all(spec["type"] == "string" for spec in ours.values())


def test_generated_events_have_unique_ids() -> None:
    assert uuid.UUID(str(uuid.uuid4()))


# --- the fast acceptor never accepts what jsonschema rejects --------------------------------

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.0, 2.5, -1.5, 90.0, 180.5, 2147483648]),
    st.text(max_size=5),
    st.uuids().map(str),
    st.sampled_from(["2024-01-02T03:04:05Z", "2024-01-02", "INPUT", "text", "a@b.example"]),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def instance_for(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like ``schema`` (often valid, often slightly wrong)."""
    if not isinstance(schema, dict) or depth > 3:
        return json_value
    options = [json_value]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        options.append(st.sampled_from(schema["enum"]))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        fields = {k: instance_for(v, depth + 1) for k, v in properties.items()}
        options.append(
            st.builds(
                lambda chosen, extra: {**chosen, **extra},
                st.fixed_dictionaries({}, optional=fields),
                st.sampled_from([{}, {}, {"unexpected": 1}]),
            )
        )
    items = schema.get("items")
    if isinstance(items, dict):
        options.append(st.lists(instance_for(items, depth + 1), max_size=3))
    return st.one_of(*options)


def _schema_files(root: Path) -> List[Path]:
    return sorted(p for p in (root / "schemas").glob("*/*/jsonschema/*") if p.is_file())


@SETTINGS
@given(data=st.data())
def test_fast_acceptor_never_accepts_what_jsonschema_rejects(
    shared_iglu_dir: Path, data: st.DataObject
) -> None:
    from snowplow_tracker.collector.fastpath import compile_acceptor
    from snowplow_tracker.collector.schemas import _OWN_FORMATS, _format_checker

    path = data.draw(st.sampled_from(_schema_files(shared_iglu_dir)))
    schema = json.loads(path.read_text())
    accept = compile_acceptor(schema, _OWN_FORMATS)
    if accept is None:
        return
    instance = data.draw(instance_for(schema))
    validator = jsonschema.Draft4Validator(schema, format_checker=_format_checker(jsonschema))
    if accept(instance):
        assert validator.is_valid(instance), (path, instance)


def test_fast_acceptor_covers_the_common_published_schemas(shared_iglu_dir: Path) -> None:
    from snowplow_tracker.collector.fastpath import compile_acceptor
    from snowplow_tracker.collector.schemas import _OWN_FORMATS

    compiled = {
        str(p.relative_to(shared_iglu_dir / "schemas")): compile_acceptor(
            json.loads(p.read_text()), _OWN_FORMATS
        )
        for p in _schema_files(shared_iglu_dir)
    }
    covered = {name for name, accept in compiled.items() if accept is not None}
    for name in ("link_click", "add_to_cart", "web_page", "screen_view", "site_search"):
        assert any(f"/{name}/" in c for c in covered), name
    link_click = compiled[f"{VENDOR}/link_click/jsonschema/1-0-1"]
    assert link_click is not None
    assert link_click({"targetUrl": "https://x.example", "elementClasses": ["a"]}) is True
    assert link_click({"targetUrl": ""}) is False
    mobile = compiled["com.snowplowanalytics.mobile/screen_view/jsonschema/1-0-0"]
    assert mobile is not None
    assert mobile({"name": "home", "id": str(uuid.uuid4())}) is True
    assert mobile({"name": "home", "id": "not-a-uuid"}) is False
