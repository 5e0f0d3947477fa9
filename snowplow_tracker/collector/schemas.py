"""Schema resolution and validation for the local collector.

``SchemaRegistry`` finds JSON Schemas by Iglu URI in, in this order: schemas registered with
``add_schema``, the collector's own protocol envelopes (``payload_data``, ``contexts``,
``unstruct_event``, shipped in the ``schemas/`` data folder of this package), and static Iglu
repositories on disk (``<dir>/schemas/<vendor>/<name>/jsonschema/<version>``).

Instances are validated with ``jsonschema``'s ``Draft4Validator`` (the vocabulary of Iglu
schemas), compiled once per URI and cached. ``jsonschema`` is an optional dependency: without
it, lookups still work, the protocol envelopes are still checked (their simple shape is read
from the schema documents and checked directly), and validation of other schemas is reported
as skipped.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from itertools import islice
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from .fastpath import compile_acceptor
from .protocol import SchemaKey, json_type, short_repr

__all__ = [
    "BUILTIN_SCHEMA_DIR",
    "SchemaRegistry",
    "SchemaValidation",
    "find_schema_root",
]

logger = logging.getLogger("snowplow_tracker.collector.schemas")

#: Folder (static Iglu layout) holding the collector's own envelope schemas.
BUILTIN_SCHEMA_DIR = Path(__file__).resolve().with_name("schemas")

_IGLUCENTRAL_PREFIXES = ("http://iglucentral.com/schemas/", "https://iglucentral.com/schemas/")
_MAX_ERRORS = 10
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

PathLike = Union[str, Path]
Checker = Callable[[Any], List[str]]


class SchemaValidation(NamedTuple):
    """Outcome of validating one instance: ``errors`` make it bad, ``notes`` are informative."""

    errors: List[str]
    notes: List[str]
    found: bool


def find_schema_root(directory: PathLike) -> Path:
    """Return the ``schemas`` folder of a static Iglu repository.

    ``directory`` may be the repository root (holding ``schemas/``) or the ``schemas`` folder
    itself.
    """
    path = Path(directory).expanduser().resolve()
    if (path / "schemas").is_dir():
        return path / "schemas"
    return path


def iglu_uri_from_reference(reference: str) -> Optional[str]:
    """Map ``iglu:...`` or an iglucentral.com schema URL to an ``iglu:`` URI (else ``None``)."""
    reference = reference.split("#", 1)[0]
    if reference.startswith("iglu:"):
        return reference
    for prefix in _IGLUCENTRAL_PREFIXES:
        if reference.startswith(prefix):
            return "iglu:" + reference[len(prefix) :].strip("/")
    return None


# --- envelope shapes ------------------------------------------------------------------------
#
# The protocol envelopes are tiny, fixed-shape schemas that are checked for every event, so the
# collector reads their parameters (allowed keys, required keys, minimum item count, URI
# pattern) from the schema documents once and checks instances directly. The tests cross-check
# this against jsonschema with the same documents and with the published ones.


class _PayloadDataShape:
    """Array of flat objects with string values, known keys only, some keys required."""

    def __init__(
        self, version: str, allowed: FrozenSet[str], required: Tuple[str, ...], min_items: int
    ):
        self.version = version
        self.allowed = allowed
        self.required = required
        self.min_items = min_items

    def __call__(self, data: Any) -> List[str]:
        if not isinstance(data, list):
            return [f"'data' must be an array of events, got {json_type(data)}"]
        if len(data) < self.min_items:
            return ["'data' is an empty array (at least one event is required)"]
        errors: List[str] = []
        allowed, required = self.allowed, self.required
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                errors.append(f"data[{index}] is not an object (got {json_type(item)})")
                continue
            for key in required:
                if key not in item:
                    errors.append(f"data[{index}]: missing required field '{key}'")
            for key, value in item.items():
                if key not in allowed:
                    errors.append(
                        f"data[{index}]: unknown field {short_repr(key)} "
                        f"(not allowed by payload_data {self.version})"
                    )
                elif value is None:
                    errors.append(f"data[{index}]: value of '{key}' cannot be null")
                elif not isinstance(value, str):
                    errors.append(
                        f"data[{index}]: value of '{key}' is not a string (got {json_type(value)})"
                    )
            if len(errors) >= 20:
                errors.append("... (further errors omitted)")
                break
        return errors


def _entity_errors(entity: Any, pattern: re.Pattern[str], where: str) -> List[str]:
    if not isinstance(entity, dict):
        return [f"{where} is not an object (got {json_type(entity)})"]
    errors = [f"{where} has no '{key}'" for key in ("schema", "data") if key not in entity]
    extra = sorted(set(entity) - {"schema", "data"})
    if extra:
        errors.append(f"{where} has unexpected keys {extra} (only schema and data are allowed)")
    uri = entity.get("schema")
    if "schema" in entity and (not isinstance(uri, str) or pattern.search(uri) is None):
        errors.append(f"{where} schema {short_repr(uri)} is not a valid Iglu URI")
    return errors


def _remember(known: Set[str], entity: Any) -> None:
    """Remember the URI of a well-formed entity (bounded: the same few URIs recur)."""
    uri = entity.get("schema") if isinstance(entity, dict) else None
    if uri.__class__ is str and len(known) < 10_000:
        known.add(uri)


class _ContextsShape:
    """Array (maybe with a minimum length) of ``{schema, data}`` objects."""

    def __init__(self, pattern: str, min_items: int):
        self.pattern = re.compile(pattern)
        self.min_items = min_items
        self.known: Set[str] = set()  # URIs that matched the pattern (bounded)

    def __call__(self, data: Any) -> List[str]:
        if not isinstance(data, list):
            return [f"contexts 'data' must be an array, got {json_type(data)}"]
        if len(data) < self.min_items:
            return ["contexts 'data' is an empty array (this version needs at least one entity)"]
        errors: List[str] = []
        known = self.known
        for index, entity in enumerate(data):
            if entity.__class__ is dict and len(entity) == 2 and "data" in entity:
                uri = entity.get("schema")
                if uri.__class__ is str and uri in known:
                    continue  # a well-formed entity whose URI matched the pattern before
            found = _entity_errors(entity, self.pattern, f"entity {index}")
            if found:
                errors.extend(found)
            else:
                _remember(known, entity)
        return errors


class _UnstructShape:
    """Exactly one ``{schema, data}`` object."""

    def __init__(self, pattern: str):
        self.pattern = re.compile(pattern)
        self.known: Set[str] = set()  # URIs that matched the pattern (bounded)

    def __call__(self, data: Any) -> List[str]:
        if data.__class__ is dict and len(data) == 2 and "data" in data:
            uri = data.get("schema")
            if uri.__class__ is str and uri in self.known:
                return []
        errors = _entity_errors(data, self.pattern, "unstruct_event 'data'")
        if not errors:
            _remember(self.known, data)
        return errors


def _shape_from_document(doc: Dict[str, Any]) -> Optional[Checker]:
    """Build a direct checker for one of our envelope schema documents (``None`` if unknown)."""
    meta = doc.get("self", {})
    name, version = meta.get("name"), meta.get("version", "")
    try:
        if name == "payload_data":
            items = doc["items"]
            props = items["properties"]
            if (
                doc.get("type") == "array"
                and items.get("type") == "object"
                and items.get("additionalProperties") is False
                and all(
                    spec.get("type") == "string" and set(spec) <= {"type", "description"}
                    for spec in props.values()
                )
            ):
                return _PayloadDataShape(
                    version, frozenset(props), tuple(items["required"]), int(doc.get("minItems", 0))
                )
        elif name == "contexts":
            pattern = doc["items"]["properties"]["schema"]["pattern"]
            return _ContextsShape(pattern, int(doc.get("minItems", 0)))
        elif name == "unstruct_event":
            return _UnstructShape(doc["properties"]["schema"]["pattern"])
    except (KeyError, TypeError, AttributeError):
        return None
    return None


# --- jsonschema (optional) ------------------------------------------------------------------


def _load_jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError:
        return None
    return jsonschema


def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or _UUID.fullmatch(value) is not None


def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or _DATE_TIME.fullmatch(value) is not None


#: Formats the collector enforces itself (on top of jsonschema's draft-4 checkers).
_OWN_FORMATS: Dict[str, Callable[[Any], bool]] = {"uuid": _is_uuid, "date-time": _is_date_time}


def _format_checker(jsonschema: Any) -> Any:
    base = getattr(jsonschema.Draft4Validator, "FORMAT_CHECKER", None)
    formats = list(base.checkers) if base is not None else None
    checker = jsonschema.FormatChecker(formats=formats)
    for name, check in _OWN_FORMATS.items():
        checker.checks(name)(check)
    return checker


def _json_pointer(path: Iterable[Any]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "/data" + "".join("/" + part for part in parts)


class SchemaRegistry:
    """Resolves Iglu URIs to JSON Schemas and validates instances against them.

    Thread-safe; compiled validators are cached per URI. ``lenient`` turns "schema not found"
    from an error into a note.
    """

    def __init__(
        self,
        iglu_dirs: Sequence[PathLike] = (),
        *,
        lenient: bool = False,
        check_formats: bool = True,
    ) -> None:
        self.lenient = lenient
        self._roots: List[Path] = [find_schema_root(d) for d in iglu_dirs]
        for root in self._roots:
            if not root.is_dir():
                logger.warning("Iglu directory %s does not exist", root)
        self._check_formats = check_formats
        self._lock = threading.RLock()
        self._added: Dict[str, Any] = {}
        self._builtin: Dict[str, Dict[str, Any]] = self._load_builtin()
        self._shapes: Dict[str, Optional[Checker]] = {
            uri: _shape_from_document(doc) for uri, doc in self._builtin.items()
        }
        self._documents: Dict[str, Tuple[Any, str]] = {}
        self._missing: Dict[str, bool] = {}
        self._validators: Dict[str, Checker] = {}
        self._checkers: Dict[str, Callable[[Any], SchemaValidation]] = {}
        self._jsonschema: Any = None
        self._jsonschema_loaded = False
        self._ref_registry: Any = None

    # -- configuration --------------------------------------------------------------------

    @property
    def iglu_roots(self) -> List[Path]:
        """The ``schemas`` folders searched, in order."""
        return list(self._roots)

    @property
    def jsonschema_available(self) -> bool:
        """Whether the optional ``jsonschema`` package could be imported."""
        return self._get_jsonschema() is not None

    def _get_jsonschema(self) -> Any:
        if not self._jsonschema_loaded:
            with self._lock:
                if not self._jsonschema_loaded:
                    self._jsonschema = _load_jsonschema()
                    self._jsonschema_loaded = True
                    if self._jsonschema is None:
                        logger.warning(
                            "jsonschema is not installed: self-describing events and entities "
                            "will not be validated (install snowplow-tracker[collector])"
                        )
        return self._jsonschema

    @staticmethod
    def _load_builtin() -> Dict[str, Dict[str, Any]]:
        documents: Dict[str, Dict[str, Any]] = {}
        for path in sorted(BUILTIN_SCHEMA_DIR.glob("*/*/jsonschema/*")):
            if path.is_file():
                vendor, name, fmt, version = path.parts[-4:]
                documents[f"iglu:{vendor}/{name}/{fmt}/{version}"] = json.loads(
                    path.read_text(encoding="utf-8")
                )
        return documents

    def add_schema(self, uri: str, schema: Any) -> None:
        """Register ``schema`` (a JSON Schema document) for ``uri``; it wins over files."""
        key = SchemaKey.parse(uri)
        if not isinstance(schema, (dict, bool)):
            raise TypeError("schema must be a JSON object (dict)")
        with self._lock:
            self._added[key.uri] = schema
            self._documents.clear()
            self._missing.clear()
            self._validators.clear()
            self._checkers.clear()
            self._ref_registry = None

    # -- lookup -----------------------------------------------------------------------------

    def lookup(self, uri: str) -> Optional[Any]:
        """Return the schema document for ``uri``, or ``None`` when no source has it."""
        found = self._find(uri)
        return None if found is None else found[0]

    def source_of(self, uri: str) -> Optional[str]:
        """Where the schema for ``uri`` comes from (``"added"``, ``"builtin"`` or a file path)."""
        found = self._find(uri)
        return None if found is None else found[1]

    def _find(self, uri: str) -> Optional[Tuple[Any, str]]:
        cached = self._documents.get(uri)
        if cached is not None:
            return cached
        if uri in self._missing:
            return None
        with self._lock:
            result = self._find_uncached(uri)
            if result is None:
                self._missing[uri] = True
            else:
                self._documents[uri] = result
            return result

    def _find_uncached(self, uri: str) -> Optional[Tuple[Any, str]]:
        if uri in self._added:
            return self._added[uri], "added"
        if uri in self._builtin:
            return self._builtin[uri], "builtin"
        try:
            key = SchemaKey.parse(uri)
        except ValueError:
            return None
        for root in self._roots:
            path = root / key.vendor / key.name / key.format / key.version
            if path.is_file():
                try:
                    return json.loads(path.read_text(encoding="utf-8")), str(path)
                except (OSError, ValueError) as exc:
                    logger.warning("cannot read schema %s: %s", path, exc)
                    return {"__unreadable__": f"{path}: {exc}"}, str(path)
        return None

    def not_found_message(self, uri: str) -> str:
        """Readable "not found" message naming where the collector looked."""
        places = ", ".join(str(root) for root in self._roots) or "no Iglu directories configured"
        return f"schema {uri} not found (searched: added schemas, built-in envelopes, {places})"

    # -- validation -------------------------------------------------------------------------

    def envelope_checker(self, uri: str) -> Optional[Checker]:
        """Direct checker for one of the collector's own envelope schemas (unless overridden)."""
        if uri in self._added:
            return None
        return self._shapes.get(uri)

    def validate(self, uri: str, instance: Any) -> SchemaValidation:
        """Validate ``instance`` (the ``data`` of a self-describing JSON) against ``uri``."""
        checker = self._checkers.get(uri)
        if checker is None:
            checker = self._checker(uri)
        return checker(instance)

    def _checker(self, uri: str) -> Callable[[Any], SchemaValidation]:
        """How instances of ``uri`` are validated (decided once per URI, until add_schema)."""
        shape = self.envelope_checker(uri)
        checker: Callable[[Any], SchemaValidation]
        if shape is not None:
            envelope = shape

            def checker(instance: Any) -> SchemaValidation:
                return SchemaValidation(envelope(instance), [], True)

        else:
            found = self._find(uri)
            if found is None:
                message = self.not_found_message(uri)
                if self.lenient:
                    note = f"{message}; accepted (lenient mode)"

                    def checker(_instance: Any) -> SchemaValidation:
                        return SchemaValidation([], [note], False)

                else:

                    def checker(_instance: Any) -> SchemaValidation:
                        return SchemaValidation([message], [], False)

            else:
                validator = self._validators.get(uri)
                if validator is None and self._get_jsonschema() is None:
                    skipped = f"schema {uri} not checked: jsonschema is not installed"

                    def checker(_instance: Any) -> SchemaValidation:
                        return SchemaValidation([], [skipped], True)

                    return checker  # not cached: jsonschema may be installed later
                if validator is None:
                    validator = self._compile(uri, found[0], found[1])
                compiled = validator

                def checker(instance: Any) -> SchemaValidation:
                    return SchemaValidation(compiled(instance), [], True)

        with self._lock:
            if len(self._checkers) < 10_000:
                self._checkers[uri] = checker
        return checker

    def _compile(self, uri: str, document: Any, source: str) -> Checker:
        jsonschema = self._get_jsonschema()
        if isinstance(document, dict) and "__unreadable__" in document:
            reason = document["__unreadable__"]

            def unreadable(_instance: Any) -> List[str]:
                return [f"schema {uri} could not be read ({reason})"]

            self._validators[uri] = unreadable
            return unreadable
        kwargs: Dict[str, Any] = {}
        if self._check_formats:
            kwargs["format_checker"] = _format_checker(jsonschema)
        registry = self._referencing_registry()
        try:
            if registry is None:
                raise TypeError("no referencing library")
            compiled = jsonschema.Draft4Validator(document, registry=registry, **kwargs)
        except TypeError:  # jsonschema < 4.18 has no registry argument
            resolver = self._legacy_resolver(jsonschema, document)
            compiled = jsonschema.Draft4Validator(document, resolver=resolver, **kwargs)
        accept = compile_acceptor(document, _OWN_FORMATS if self._check_formats else None)

        def check(instance: Any) -> List[str]:
            if accept is not None and accept(instance):
                return []
            try:
                return [
                    f"jsonschema: {error.message} at {_json_pointer(error.absolute_path)}"
                    for error in islice(compiled.iter_errors(instance), _MAX_ERRORS)
                ]
            except Exception as exc:  # broken schema or unresolvable $ref
                return [f"schema {uri} ({source}) could not be applied: {exc}"]

        self._validators[uri] = check
        return check

    def _retrieve_document(self, reference: str) -> Any:
        uri = iglu_uri_from_reference(reference)
        document = self.lookup(uri) if uri is not None else None
        if document is None:
            raise LookupError(f"cannot resolve {reference} without network access")
        return document

    def _referencing_registry(self) -> Any:
        if self._ref_registry is not None:
            return self._ref_registry
        try:
            import referencing
            import referencing.exceptions
            import referencing.jsonschema
        except ImportError:
            return None

        def retrieve(reference: str) -> Any:
            try:
                document = self._retrieve_document(reference)
            except LookupError:
                raise referencing.exceptions.NoSuchResource(ref=reference) from None  # type: ignore[call-arg]
            return referencing.jsonschema.DRAFT4.create_resource(document)

        self._ref_registry = referencing.Registry(retrieve=retrieve)  # type: ignore[call-arg]
        return self._ref_registry

    def _legacy_resolver(self, jsonschema: Any, document: Any) -> Any:
        def handler(reference: str) -> Any:
            return self._retrieve_document(reference)

        handlers = {"http": handler, "https": handler, "iglu": handler}
        return jsonschema.RefResolver("", document, handlers=handlers)
