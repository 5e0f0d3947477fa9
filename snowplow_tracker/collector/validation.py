"""Per-event validation and the Micro-shaped JSON of received events.

``EventValidator.check`` applies the tracker-protocol rules and the schema checks to one
event's parameters and returns an ``EventCheck`` (errors, notes, decoded self-describing
data). ``RequestContext`` holds what the collector saw of the HTTP request, and
``render_event`` builds the readable ``event`` dict (atomic field names) of a good event.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

from .protocol import (
    BUILTIN_EVENT_SCHEMAS,
    EVENT_TYPES,
    FIELDS,
    PLATFORMS,
    SNOWPLOW_VENDOR,
    SchemaKey,
    decode_base64_json,
    iso_from_ms,
    parse_bool01,
    parse_decimal,
    parse_dimensions,
    parse_int,
    parse_ip,
    parse_json_text,
    parse_ms_epoch,
    parse_uuid,
    short_repr,
)
from .schemas import SchemaRegistry

__all__ = [
    "COLLECTOR_NAME",
    "EventCheck",
    "EventValidator",
    "RequestContext",
    "render_event",
]

#: Name reported as the collector / enrichment version in events.
COLLECTOR_NAME = "snowplow_tracker.collector"

_EVENT_CODES = ", ".join(EVENT_TYPES)
_ANONYMOUS_DROPPED_HEADERS = frozenset(("x-forwarded-for", "x-real-ip", "cookie"))
_PLATFORM_CODES = ", ".join(sorted(PLATFORMS))


class RequestContext:
    """What the collector saw of one HTTP request; shared by all events of that request."""

    __slots__ = (
        "_header_items",
        "_headers",
        "anonymous",
        "api_vendor",
        "api_version",
        "body",
        "content_type",
        "hostname",
        "ip_address",
        "network_userid",
        "query",
        "referer",
        "timestamp_ms",
        "useragent",
    )

    def __init__(
        self,
        *,
        timestamp_ms: int,
        api_vendor: str,
        api_version: str,
        query: str = "",
        content_type: Optional[str] = None,
        body: Optional[str] = None,
        headers: Sequence[str] = (),
        ip_address: Optional[str] = None,
        useragent: Optional[str] = None,
        referer: Optional[str] = None,
        hostname: Optional[str] = None,
        network_userid: Optional[str] = None,
        anonymous: bool = False,
    ) -> None:
        self.timestamp_ms = timestamp_ms
        self.api_vendor = api_vendor
        self.api_version = api_version
        self.query = query
        self.content_type = content_type
        self.body = body
        self._headers: Optional[List[str]] = list(headers)
        self._header_items: Optional[Sequence[Tuple[str, str]]] = None
        self.ip_address = ip_address
        self.useragent = useragent
        self.referer = referer
        self.hostname = hostname
        self.network_userid = network_userid
        self.anonymous = anonymous

    @classmethod
    def from_header_items(
        cls,
        timestamp_ms: int,
        api_vendor: str,
        api_version: str,
        query: str,
        content_type: Optional[str],
        header_items: Sequence[Tuple[str, str]],
        ip_address: Optional[str],
        useragent: Optional[str],
        referer: Optional[str],
        hostname: Optional[str],
        network_userid: Optional[str],
        anonymous: bool,
    ) -> RequestContext:
        """A context whose ``headers`` lines are made from ``(name, value)`` pairs when read.

        For anonymous requests, ``Cookie``, ``X-Forwarded-For`` and ``X-Real-Ip`` are left
        out of the lines.
        """
        ctx: RequestContext = object.__new__(cls)
        ctx.timestamp_ms = timestamp_ms
        ctx.api_vendor = api_vendor
        ctx.api_version = api_version
        ctx.query = query
        ctx.content_type = content_type
        ctx.body = None
        ctx._headers = None
        ctx._header_items = header_items
        ctx.ip_address = ip_address
        ctx.useragent = useragent
        ctx.referer = referer
        ctx.hostname = hostname
        ctx.network_userid = network_userid
        ctx.anonymous = anonymous
        return ctx

    @property
    def headers(self) -> List[str]:
        """The request's header lines (``"Name: value"``), in arrival order."""
        lines = self._headers
        if lines is None:
            anonymous = self.anonymous
            lines = self._headers = [
                f"{name}: {value}"
                for name, value in self._header_items or ()
                if not (anonymous and name.lower() in _ANONYMOUS_DROPPED_HEADERS)
            ]
        return lines

    @headers.setter
    def headers(self, lines: Sequence[str]) -> None:
        self._headers = list(lines)

    @property
    def timestamp_iso(self) -> str:
        """Collector timestamp in ISO-8601."""
        return iso_from_ms(self.timestamp_ms)

    def source(self) -> Dict[str, Any]:
        """The ``source`` block of Micro's JSON."""
        return {"name": COLLECTOR_NAME, "encoding": "UTF-8", "hostname": self.hostname}

    def context(self) -> Dict[str, Any]:
        """The ``context`` block of Micro's JSON."""
        return {
            "timestamp": self.timestamp_iso,
            "ipAddress": self.ip_address,
            "useragent": self.useragent,
            "refererUri": self.referer,
            "headers": list(self.headers),
            "userId": self.network_userid,
        }

    def api(self) -> Dict[str, str]:
        """The ``api`` block (vendor and version of the endpoint)."""
        return {"vendor": self.api_vendor, "version": self.api_version}

    def collector_payload(self) -> Dict[str, Any]:
        """Micro's ``collectorPayload`` object for bad rows."""
        return {
            "api": self.api(),
            "querystring": [part for part in self.query.split("&") if part],
            "contentType": self.content_type,
            "body": self.body,
            "source": self.source(),
            "context": self.context(),
        }

    def raw_event(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        """Micro's ``rawEvent`` object for one event of this request."""
        return {
            "api": self.api(),
            "parameters": dict(params),
            "contentType": self.content_type,
            "source": self.source(),
            "context": self.context(),
        }


class EventCheck:
    """Result of checking one event: errors (bad when non-empty), notes, decoded data."""

    __slots__ = ("contexts", "contexts_json", "errors", "event_type", "notes", "schema", "unstruct")

    def __init__(self) -> None:
        self.errors: List[str] = []
        self.notes: List[str] = []
        self.event_type: Optional[str] = None
        self.schema: Optional[str] = None
        self.contexts: List[str] = []
        self.unstruct: Optional[Any] = None
        self.contexts_json: Optional[Any] = None

    @property
    def valid(self) -> bool:
        """True when no error was found."""
        return not self.errors


_CONVERTERS = {
    "uuid": parse_uuid,
    "int": parse_int,
    "decimal": parse_decimal,
    "bool": parse_bool01,
    "timestamp": parse_ms_epoch,
    "dimensions": parse_dimensions,
}


#: Per parameter, what ``check`` does with a string value: a length limit, a converter that
#: raises ``ValueError``, or the ``ip`` rule (other kinds are checked elsewhere).
_STRING_LIMITS: Dict[str, int] = {
    key: spec.max_length
    for key, spec in FIELDS.items()
    if spec.kind == "string" and spec.max_length is not None
}
_KEY_CONVERTERS: Dict[str, Callable[[str], Any]] = {
    key: _CONVERTERS[spec.kind] for key, spec in FIELDS.items() if spec.kind in _CONVERTERS
}
_IP_KEYS = frozenset(key for key, spec in FIELDS.items() if spec.kind == "ip")


class EventValidator:
    """Checks events against the tracker protocol and the schemas of a ``SchemaRegistry``."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        # (envelope name, URI) pairs whose URI is known to name that envelope (bounded).
        self._envelope_uris: Set[Tuple[str, Any]] = set()

    # -- full check -------------------------------------------------------------------------

    def check(self, params: Mapping[str, Any]) -> EventCheck:
        """Validate one event's parameters; never raises."""
        result = EventCheck()
        errors = result.errors
        code = params.get("e")
        if code is None:
            errors.append("missing required field 'e'")
        else:
            result.event_type = EVENT_TYPES.get(code) if isinstance(code, str) else None
            if result.event_type is None:
                errors.append(
                    f"field 'e' has an unknown event type code {short_repr(code)} "
                    f"(expected one of {_EVENT_CODES})"
                )
        platform = params.get("p")
        if platform is None:
            errors.append("missing required field 'p'")
        elif platform not in PLATFORMS:
            errors.append(
                f"field 'p' has an unknown platform {short_repr(platform)} "
                f"(expected one of {_PLATFORM_CODES})"
            )
        if "tv" not in params:
            errors.append("missing required field 'tv'")

        limits, converters = _STRING_LIMITS, _KEY_CONVERTERS
        for key, value in params.items():
            if value.__class__ is not str:
                if key in FIELDS:
                    if value is None:
                        errors.append(f"value of '{key}' cannot be null")
                    elif not isinstance(value, str):
                        errors.append(f"value of '{key}' is not a string")
                continue
            limit = limits.get(key)
            if limit is not None:
                if len(value) > limit:
                    errors.append(
                        f"field '{key}' ({FIELDS[key].columns[0]}) is longer than {limit} "
                        f"characters ({len(value)})"
                    )
                continue
            converter = converters.get(key)
            if converter is not None:
                try:
                    converter(value)
                except ValueError as exc:
                    errors.append(f"field '{key}' {exc}")
            elif key in _IP_KEYS and len(parse_ip(value)) > 128:
                errors.append(f"field '{key}' (user_ipaddress) is longer than 128 characters")

        self._check_unstruct(params, result)
        self._check_contexts(params, result)
        if result.event_type is not None and result.event_type != "unstruct":
            result.schema = BUILTIN_EVENT_SCHEMAS.get(result.event_type)
        return result

    def _decode(
        self, params: Mapping[str, Any], plain: str, encoded: str, result: EventCheck
    ) -> Tuple[Optional[str], Any]:
        """Decode the JSON of ``encoded`` (base64) or else ``plain``; returns (field, document)."""
        for field, is_encoded in ((encoded, True), (plain, False)):
            value = params.get(field)
            if not isinstance(value, str):
                continue
            try:
                return field, decode_base64_json(value) if is_encoded else parse_json_text(value)
            except ValueError as exc:
                result.errors.append(f"{field} {exc}")
                return None, None
        return None, None

    def _envelope(self, field: str, document: Any, name: str, result: EventCheck) -> Optional[Any]:
        """Check the ``{schema, data}`` envelope of ``name``; return its data when it is fine."""
        if not isinstance(document, dict) or "schema" not in document or "data" not in document:
            result.errors.append(
                f"{field} is not a self-describing JSON (expected an object with 'schema' and "
                f"'data', got {short_repr(document)})"
            )
            return None
        uri = document["schema"]
        if uri.__class__ is not str or (name, uri) not in self._envelope_uris:
            try:
                key = SchemaKey.parse(uri)
            except ValueError as exc:
                result.errors.append(f"{field}: {exc}")
                return None
            if key.vendor != SNOWPLOW_VENDOR or key.name != name or key.model != 1:
                result.errors.append(
                    f"{field} must hold a {name} envelope "
                    f"(iglu:{SNOWPLOW_VENDOR}/{name}/jsonschema/1-*-*), got {key.uri}"
                )
                return None
            if len(self._envelope_uris) < 1000:
                self._envelope_uris.add((name, uri))
        data = document["data"]
        outcome = self.registry.validate(uri, data)  # a parsed URI is its key's ``uri``
        if outcome.notes:
            result.notes.extend(outcome.notes)
        if outcome.errors:
            version = SchemaKey.parse(uri).version
            result.errors.extend(f"{field}: {name} envelope {version}: {e}" for e in outcome.errors)
            return None
        return data

    def _entity(self, where: str, index: int, entity: Any, result: EventCheck) -> Optional[str]:
        """Validate one ``{schema, data}``; return its URI when the URI is well formed.

        ``where`` (with `` entity <index>`` when ``index`` >= 0) names it in error messages.
        """
        if (
            not (entity.__class__ is dict or isinstance(entity, Mapping))
            or "schema" not in entity
            or "data" not in entity
        ):
            where = f"{where}: entity {index}" if index >= 0 else where
            result.errors.append(f"{where} is not an object with 'schema' and 'data'")
            return None
        uri = entity["schema"]
        try:
            SchemaKey.parse(uri)
        except ValueError as exc:
            where = f"{where}: entity {index}" if index >= 0 else where
            result.errors.append(f"{where}: {exc}")
            return None
        outcome = self.registry.validate(uri, entity["data"])  # a parsed URI is its key's ``uri``
        if outcome.notes:
            result.notes.extend(outcome.notes)
        if outcome.errors:
            where = f"{where}: entity {index}" if index >= 0 else where
            for message in outcome.errors:
                if message.startswith("jsonschema:"):
                    result.errors.append(f"{where}: {uri}: {message}")
                else:
                    result.errors.append(f"{where}: {message}")
        return str(uri)

    def _check_unstruct(self, params: Mapping[str, Any], result: EventCheck) -> None:
        field, document = self._decode(params, "ue_pr", "ue_px", result)
        if field is None:
            if result.event_type == "unstruct" and "ue_px" not in params and "ue_pr" not in params:
                result.errors.append("self-describing event (e=ue) has no ue_pr or ue_px")
            return
        result.unstruct = document
        inner = self._envelope(field, document, "unstruct_event", result)
        if isinstance(inner, dict):
            uri = self._entity(field, -1, inner, result)
            if result.event_type == "unstruct":
                result.schema = uri

    def _check_contexts(self, params: Mapping[str, Any], result: EventCheck) -> None:
        field, document = self._decode(params, "co", "cx", result)
        if field is None:
            return
        result.contexts_json = document
        entities = self._envelope(field, document, "contexts", result)
        if isinstance(entities, list):
            contexts = result.contexts
            for index, entity in enumerate(entities):
                uri = self._entity(field, index, entity, result)
                if uri is not None:
                    contexts.append(uri)

    # -- light decoding (validation turned off) ---------------------------------------------

    def describe(self, params: Mapping[str, Any]) -> EventCheck:
        """Decode type, schema and entities without validating (errors are ignored)."""
        result = EventCheck()
        code = params.get("e")
        result.event_type = EVENT_TYPES.get(code) if isinstance(code, str) else None
        _, unstruct = self._decode(params, "ue_pr", "ue_px", result)
        _, contexts = self._decode(params, "co", "cx", result)
        result.unstruct, result.contexts_json = unstruct, contexts
        if result.event_type == "unstruct":
            inner = unstruct.get("data") if isinstance(unstruct, dict) else None
            schema = inner.get("schema") if isinstance(inner, dict) else None
            result.schema = schema if isinstance(schema, str) else None
        elif result.event_type is not None:
            result.schema = BUILTIN_EVENT_SCHEMAS.get(result.event_type)
        entities = contexts.get("data") if isinstance(contexts, dict) else None
        if isinstance(entities, list):
            result.contexts = [
                e["schema"]
                for e in entities
                if isinstance(e, dict) and isinstance(e.get("schema"), str)
            ]
        result.errors = []
        return result


# --- rendering of the readable event --------------------------------------------------------

_COLUMNS: Tuple[str, ...] = (
    "app_id", "platform", "etl_tstamp", "collector_tstamp", "dvce_created_tstamp", "event",
    "event_id", "txn_id", "name_tracker", "v_tracker", "v_collector", "v_etl", "user_id",
    "user_ipaddress", "user_fingerprint", "domain_userid", "domain_sessionidx", "network_userid",
    "page_url", "page_title", "page_referrer", "page_urlscheme", "page_urlhost", "page_urlport",
    "page_urlpath", "page_urlquery", "page_urlfragment", "refr_urlscheme", "refr_urlhost",
    "refr_urlport", "refr_urlpath", "refr_urlquery", "refr_urlfragment", "contexts",
    "se_category", "se_action", "se_label", "se_property", "se_value", "unstruct_event",
    "tr_orderid", "tr_affiliation", "tr_total", "tr_tax", "tr_shipping", "tr_city", "tr_state",
    "tr_country", "ti_orderid", "ti_sku", "ti_name", "ti_category", "ti_price", "ti_quantity",
    "pp_xoffset_min", "pp_xoffset_max", "pp_yoffset_min", "pp_yoffset_max", "useragent",
    "br_lang", "br_features_pdf", "br_features_flash", "br_features_java",
    "br_features_director", "br_features_quicktime", "br_features_realplayer",
    "br_features_windowsmedia", "br_features_gears", "br_features_silverlight", "br_cookies",
    "br_colordepth", "br_viewwidth", "br_viewheight", "os_timezone", "dvce_screenwidth",
    "dvce_screenheight", "doc_charset", "doc_width", "doc_height", "tr_currency", "ti_currency",
    "dvce_sent_tstamp", "domain_sessionid", "derived_tstamp", "event_vendor", "event_name",
    "event_format", "event_version", "true_tstamp",
)  # fmt: skip

_DEFAULT_PORTS = {"http": 80, "https": 443}


_UrlParts = Tuple[Optional[str], Optional[str], Optional[int], str, Optional[str], Optional[str]]


def _url_parts(url: str) -> Optional[_UrlParts]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return (
        scheme,
        parts.hostname,
        port if port is not None else _DEFAULT_PORTS.get(scheme),
        parts.path or "/",
        parts.query or None,
        parts.fragment or None,
    )


def _convert(kind: str, value: str) -> Any:
    if kind == "uuid":
        return value.lower()
    if kind == "timestamp":
        return iso_from_ms(parse_ms_epoch(value))
    if kind == "ip":
        return parse_ip(value)
    converter = _CONVERTERS.get(kind)
    return converter(value) if converter is not None else value


def render_event(
    params: Mapping[str, Any], check: EventCheck, ctx: RequestContext
) -> Dict[str, Any]:
    """The readable ``event`` dict of a (good) event: atomic column names, decoded values."""
    event: Dict[str, Any] = dict.fromkeys(_COLUMNS)
    event["user_ipaddress"] = ctx.ip_address if not ctx.anonymous else None
    event["useragent"] = ctx.useragent
    event["network_userid"] = ctx.network_userid
    deferred: List[Tuple[str, Any]] = []
    for key, value in params.items():
        spec = FIELDS.get(key)
        if spec is None or not isinstance(value, str):
            continue
        if key == "tnuid":
            deferred.append((key, value))
            continue
        kind = spec.kind
        if kind in ("unstruct_json", "unstruct_base64", "contexts_json", "contexts_base64"):
            continue
        if kind == "event":
            event["event"] = EVENT_TYPES.get(value)
            continue
        try:
            converted = _convert(kind, value)
        except ValueError:
            continue
        if kind == "dimensions":
            event[spec.columns[0]], event[spec.columns[1]] = converted
        else:
            event[spec.columns[0]] = converted
    for _key, value in deferred:
        event["network_userid"] = value
    collector_iso = ctx.timestamp_iso
    event["collector_tstamp"] = collector_iso
    event["etl_tstamp"] = collector_iso
    event["v_collector"] = COLLECTOR_NAME
    event["v_etl"] = COLLECTOR_NAME
    event["unstruct_event"] = check.unstruct
    event["contexts"] = check.contexts_json
    event["derived_tstamp"] = _derived_tstamp(params, ctx)
    if check.schema is not None:
        try:
            schema_key = SchemaKey.parse(check.schema)
        except ValueError:
            pass
        else:
            event["event_vendor"], event["event_name"] = schema_key.vendor, schema_key.name
            event["event_format"], event["event_version"] = schema_key.format, schema_key.version
    for column, prefix in (("page_url", "page_url"), ("page_referrer", "refr_url")):
        url = event[column]
        parts = _url_parts(url) if isinstance(url, str) else None
        if parts is not None:
            for suffix, part in zip(("scheme", "host", "port", "path", "query", "fragment"), parts):
                event[prefix + suffix] = part
    return event


def _derived_tstamp(params: Mapping[str, Any], ctx: RequestContext) -> str:
    try:
        true_ms = params.get("ttm")
        if isinstance(true_ms, str):
            return iso_from_ms(parse_ms_epoch(true_ms))
        created, sent = params.get("dtm"), params.get("stm")
        if isinstance(created, str) and isinstance(sent, str):
            created_ms, sent_ms = parse_ms_epoch(created), parse_ms_epoch(sent)
            if created_ms < sent_ms:
                return iso_from_ms(ctx.timestamp_ms - (sent_ms - created_ms))
    except (ValueError, OverflowError):
        pass
    return ctx.timestamp_iso


def utc_now_ms() -> int:
    """Current time in epoch milliseconds."""
    return int(time.time() * 1000)
