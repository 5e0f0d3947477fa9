"""Tracker-protocol facts and decoding helpers for the local collector.

Everything here is pure (no I/O, no global state): parsing Iglu URIs, converting parameter
values the way the Snowplow enrichment does, decoding base64 JSON, parsing query strings and
POST bodies. Problems are reported as readable strings, never as tracebacks.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import json
import re
from typing import Any, Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple
from urllib.parse import parse_qsl

__all__ = [
    "ANONYMOUS_NUID",
    "EVENT_TYPES",
    "FIELDS",
    "PLATFORMS",
    "TP2_PATH",
    "FieldSpec",
    "ProtocolError",
    "SchemaKey",
    "check_content_type",
    "decode_base64_json",
    "decode_query",
    "iso_from_ms",
    "parse_bool01",
    "parse_decimal",
    "parse_dimensions",
    "parse_int",
    "parse_json_text",
    "parse_ms_epoch",
    "parse_post_body",
    "parse_uuid",
    "short_repr",
]

#: Path of the POST (and GET) endpoint of the tracker protocol version 2.
TP2_PATH = "/com.snowplowanalytics.snowplow/tp2"
#: Vendor of the Snowplow protocol envelopes.
SNOWPLOW_VENDOR = "com.snowplowanalytics.snowplow"
#: Network user id used when the request carries an ``SP-Anonymous`` header.
ANONYMOUS_NUID = "00000000-0000-0000-0000-000000000000"

#: ``e`` code -> value of the enriched ``event`` column.
EVENT_TYPES: Dict[str, str] = {
    "pv": "page_view",
    "pp": "page_ping",
    "se": "struct",
    "ev": "struct",
    "ue": "unstruct",
    "tr": "transaction",
    "ti": "transaction_item",
    "ad": "ad_impression",
}

#: Schema that the enrichment attaches to the built-in (non self-describing) event types.
BUILTIN_EVENT_SCHEMAS: Dict[str, str] = {
    "page_view": "iglu:com.snowplowanalytics.snowplow/page_view/jsonschema/1-0-0",
    "page_ping": "iglu:com.snowplowanalytics.snowplow/page_ping/jsonschema/1-0-0",
    "struct": "iglu:com.google.analytics/event/jsonschema/1-0-0",
    "transaction": "iglu:com.snowplowanalytics.snowplow/transaction/jsonschema/1-0-0",
    "transaction_item": "iglu:com.snowplowanalytics.snowplow/transaction_item/jsonschema/1-0-0",
    "ad_impression": "iglu:com.snowplowanalytics.snowplow/ad_impression/jsonschema/1-0-0",
}

#: Allowed values of ``p``.
PLATFORMS: FrozenSet[str] = frozenset(
    ("web", "mob", "pc", "srv", "app", "tv", "cnsl", "iot", "headset")
)

_IGLU_URI = re.compile(
    r"iglu:([A-Za-z0-9_.\-]+)/([A-Za-z0-9_\-]+)/([A-Za-z0-9_\-]+)/([0-9]+)-([0-9]+)-([0-9]+)"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LONG = re.compile(r"[+-]?[0-9]{1,19}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIMENSIONS = re.compile(r"([0-9]+)x([0-9]+)")
_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_EPOCH = _dt.datetime(1970, 1, 1)
# Milliseconds since the epoch of datetime.min and of the last millisecond of datetime.max.
_MIN_MS = (_dt.datetime.min - _EPOCH) // _dt.timedelta(milliseconds=1)
_MAX_MS = (_dt.datetime.max - _EPOCH) // _dt.timedelta(milliseconds=1)
_PREVIEW = 60


class ProtocolError(ValueError):
    """A tracker-protocol violation; ``errors`` holds one readable message per problem."""

    def __init__(self, *errors: str) -> None:
        super().__init__("; ".join(errors))
        self.errors: List[str] = list(errors)


def short_repr(value: Any) -> str:
    """``repr`` of a value, shortened to a readable length for error messages."""
    text = repr(value)
    if len(text) > _PREVIEW:
        text = text[: _PREVIEW - 3] + "..."
    return text


class SchemaKey(NamedTuple):
    """The parts of an Iglu URI ``iglu:vendor/name/format/model-revision-addition``."""

    vendor: str
    name: str
    format: str
    version: str

    @property
    def uri(self) -> str:
        """The key written back as an ``iglu:`` URI."""
        return f"iglu:{self.vendor}/{self.name}/{self.format}/{self.version}"

    @property
    def model(self) -> int:
        """The MODEL (first) number of the SchemaVer."""
        return int(self.version.split("-", 1)[0])

    @classmethod
    def parse(cls, uri: Any) -> SchemaKey:
        """Parse ``iglu:vendor/name/jsonschema/M-R-A``; raise ``ValueError`` with a reason."""
        if not isinstance(uri, str):
            raise ValueError(f"schema URI must be a string, got {json_type(uri)}")
        key = _KNOWN_KEYS.get(uri)
        if key is not None:
            return key
        match = _IGLU_URI.fullmatch(uri)
        if match is None:
            raise ValueError(
                f"schema URI {short_repr(uri)} is not of the form "
                "iglu:vendor/name/jsonschema/MODEL-REVISION-ADDITION"
            )
        vendor, name, fmt, model, revision, addition = match.groups()
        if fmt != "jsonschema":
            raise ValueError(f"schema URI {uri} has format {fmt!r}; only 'jsonschema' is supported")
        key = cls(vendor, name, fmt, f"{model}-{revision}-{addition}")
        if len(_KNOWN_KEYS) < 10_000:
            _KNOWN_KEYS[uri] = key
        return key


#: Parsed URIs (bounded): the same few schemas are seen again and again.
_KNOWN_KEYS: Dict[str, SchemaKey] = {}


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (``"object"``, ``"array"``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --- value conversions (each raises ValueError with a readable message) ----------------------


def parse_uuid(value: str) -> str:
    """Check a canonical 8-4-4-4-12 UUID (any case); return it lower-cased."""
    if _UUID.fullmatch(value) is None:
        raise ValueError(f"is not a valid UUID: {short_repr(value)}")
    return value.lower()


def parse_int(value: str) -> int:
    """Parse a 32-bit signed integer as the enrichment does."""
    if _LONG.fullmatch(value) is None:
        raise ValueError(f"is not an integer: {short_repr(value)}")
    number = int(value)
    if not _INT_MIN <= number <= _INT_MAX:
        raise ValueError(f"is out of the 32-bit integer range: {short_repr(value)}")
    return number


def parse_decimal(value: str) -> Optional[float]:
    """Parse a decimal number; the literal ``null`` means "no value" (returns ``None``)."""
    if value == "null":
        return None
    if _DECIMAL.fullmatch(value) is None:
        raise ValueError(f"is not a decimal number: {short_repr(value)}")
    return float(value)


def parse_bool01(value: str) -> bool:
    """Only ``"1"`` and ``"0"`` are booleans in the tracker protocol."""
    if value == "1":
        return True
    if value == "0":
        return False
    raise ValueError(f"must be '1' or '0', got {short_repr(value)}")


def parse_ms_epoch(value: str) -> int:
    """Parse milliseconds since the Unix epoch; the date must fall in years 1..9999."""
    if _LONG.fullmatch(value) is None:
        raise ValueError(f"is not a timestamp in milliseconds: {short_repr(value)}")
    millis = int(value)
    if not _MIN_MS <= millis <= _MAX_MS:
        raise ValueError(f"is a timestamp outside years 1..9999: {short_repr(value)}")
    return millis


def iso_from_ms(millis: int) -> str:
    """Render epoch milliseconds as ISO-8601 UTC with milliseconds, e.g. ``...T10:00:00.123Z``."""
    moment = _EPOCH + _dt.timedelta(milliseconds=millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_dimensions(value: str) -> Tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` where both parts fit in a 32-bit integer."""
    match = _DIMENSIONS.fullmatch(value)
    if match is None:
        raise ValueError(f"is not of the form WIDTHxHEIGHT: {short_repr(value)}")
    width, height = int(match.group(1)), int(match.group(2))
    if width > _INT_MAX or height > _INT_MAX:
        raise ValueError(f"has a dimension out of the integer range: {short_repr(value)}")
    return width, height


def parse_ip(value: str) -> str:
    """Keep only the part of an ``ip`` value before the first comma, vertical bar or space."""
    for index, char in enumerate(value):
        if char in ", |":
            return value[:index]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json_text(text: str) -> Any:
    """Parse strict JSON (no NaN/Infinity); raise ``ValueError`` with a short reason."""
    try:
        return _STRICT_JSON.decode(text)
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None


_TO_STANDARD_BASE64 = str.maketrans("-_", "+/")


def decode_base64_json(value: str) -> Any:
    """Decode URL-safe (or standard) base64, tolerating missing padding, then parse UTF-8 JSON.

    Raises ``ValueError`` whose message starts with "is not valid base64", "is not valid UTF-8"
    or "is not valid JSON".
    """
    text = value.strip()
    if _BASE64.fullmatch(text) is None or len(text.rstrip("=")) % 4 == 1:
        raise ValueError(f"is not valid base64: {short_repr(value)}")
    text = text.rstrip("=")
    text += "=" * (-len(text) % 4)
    if "-" in text or "_" in text:
        text = text.translate(_TO_STANDARD_BASE64)
    try:
        # Only base64 characters and well-placed padding are left (checked above), so
        # this is what ``b64decode(validate=True)`` would do, without its second regex.
        raw = binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        raise ValueError(f"is not valid base64: {short_repr(value)}") from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not valid UTF-8 once base64-decoded ({exc.reason})") from None
    return parse_json_text(decoded)


# --- the parameter table --------------------------------------------------------------------


class FieldSpec(NamedTuple):
    """How the enrichment reads one tracker parameter."""

    kind: str
    columns: Tuple[str, ...]
    max_length: Optional[int] = None


def _s(column: str, max_length: Optional[int] = None) -> FieldSpec:
    return FieldSpec("string", (column,), max_length)


FIELDS: Dict[str, FieldSpec] = {
    # common / application / time
    "e": FieldSpec("event", ("event",)),
    "eid": FieldSpec("uuid", ("event_id",)),
    "tv": _s("v_tracker", 100),
    "tna": _s("name_tracker", 128),
    "aid": _s("app_id", 255),
    "p": FieldSpec("platform", ("platform",)),
    "dtm": FieldSpec("timestamp", ("dvce_created_tstamp",)),
    "stm": FieldSpec("timestamp", ("dvce_sent_tstamp",)),
    "ttm": FieldSpec("timestamp", ("true_tstamp",)),
    "tz": _s("os_timezone", 255),
    # user / session / network
    "uid": _s("user_id", 255),
    "duid": _s("domain_userid", 128),
    "sid": FieldSpec("uuid", ("domain_sessionid",)),
    "vid": FieldSpec("int", ("domain_sessionidx",)),
    "nuid": _s("network_userid", 128),
    "tnuid": _s("network_userid", 128),
    "ip": FieldSpec("ip", ("user_ipaddress",), 128),
    "ua": _s("useragent", 1000),
    "fp": _s("user_fingerprint", 128),
    "tid": FieldSpec("int", ("txn_id",)),
    # web / device
    "url": _s("page_url", 10000),
    "page": _s("page_title", 2000),
    "refr": _s("page_referrer", 10000),
    "lang": _s("br_lang", 255),
    "cookie": FieldSpec("bool", ("br_cookies",)),
    "cd": _s("br_colordepth", 12),
    "cs": _s("doc_charset", 128),
    "res": FieldSpec("dimensions", ("dvce_screenwidth", "dvce_screenheight")),
    "vp": FieldSpec("dimensions", ("br_viewwidth", "br_viewheight")),
    "ds": FieldSpec("dimensions", ("doc_width", "doc_height")),
    "f_pdf": FieldSpec("bool", ("br_features_pdf",)),
    "f_fla": FieldSpec("bool", ("br_features_flash",)),
    "f_java": FieldSpec("bool", ("br_features_java",)),
    "f_dir": FieldSpec("bool", ("br_features_director",)),
    "f_qt": FieldSpec("bool", ("br_features_quicktime",)),
    "f_realp": FieldSpec("bool", ("br_features_realplayer",)),
    "f_wma": FieldSpec("bool", ("br_features_windowsmedia",)),
    "f_gears": FieldSpec("bool", ("br_features_gears",)),
    "f_ag": FieldSpec("bool", ("br_features_silverlight",)),
    # self-describing event and entities
    "ue_pr": FieldSpec("unstruct_json", ("unstruct_event",)),
    "ue_px": FieldSpec("unstruct_base64", ("unstruct_event",)),
    "co": FieldSpec("contexts_json", ("contexts",)),
    "cx": FieldSpec("contexts_base64", ("contexts",)),
    # structured event (and its legacy aliases)
    "se_ca": _s("se_category", 1000),
    "se_ac": _s("se_action", 1000),
    "se_la": _s("se_label", 4096),
    "se_pr": _s("se_property", 1000),
    "se_va": FieldSpec("decimal", ("se_value",)),
    "ev_ca": _s("se_category", 1000),
    "ev_ac": _s("se_action", 1000),
    "ev_la": _s("se_label", 4096),
    "ev_pr": _s("se_property", 1000),
    "ev_va": FieldSpec("decimal", ("se_value",)),
    # page ping
    "pp_mix": FieldSpec("int", ("pp_xoffset_min",)),
    "pp_max": FieldSpec("int", ("pp_xoffset_max",)),
    "pp_miy": FieldSpec("int", ("pp_yoffset_min",)),
    "pp_may": FieldSpec("int", ("pp_yoffset_max",)),
    # legacy ecommerce
    "tr_id": _s("tr_orderid", 255),
    "tr_af": _s("tr_affiliation", 255),
    "tr_tt": FieldSpec("decimal", ("tr_total",)),
    "tr_tx": FieldSpec("decimal", ("tr_tax",)),
    "tr_sh": FieldSpec("decimal", ("tr_shipping",)),
    "tr_ci": _s("tr_city", 255),
    "tr_st": _s("tr_state", 255),
    "tr_co": _s("tr_country", 255),
    "tr_cu": _s("tr_currency", 3),
    "ti_id": _s("ti_orderid", 255),
    "ti_sk": _s("ti_sku", 255),
    "ti_nm": _s("ti_name", 255),
    "ti_na": _s("ti_name", 255),
    "ti_ca": _s("ti_category", 255),
    "ti_pr": FieldSpec("decimal", ("ti_price",)),
    "ti_qu": FieldSpec("int", ("ti_quantity",)),
    "ti_cu": _s("ti_currency", 3),
}


# --- request-level decoding -----------------------------------------------------------------


def decode_query(query: str) -> Dict[str, str]:
    """Decode a query string (``%XX`` and ``+``, UTF-8) into a dict; the last duplicate wins."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ProtocolError("query string is not valid UTF-8 once percent-decoded") from None
    return dict(pairs)


_ALLOWED_MEDIA_TYPE = "application/json"


def check_content_type(content_type: Optional[str]) -> None:
    """Accept ``application/json`` with an optional ``charset=utf-8`` (any case)."""
    if content_type in _ACCEPTED_CONTENT_TYPES:
        return
    if content_type is None:
        raise ProtocolError("request has a body but no Content-Type (expected application/json)")
    parts = [part.strip() for part in content_type.split(";")]
    media, params = parts[0].lower(), [p for p in parts[1:] if p]
    ok = media == _ALLOWED_MEDIA_TYPE and all(
        p.lower().replace(" ", "") == "charset=utf-8" for p in params
    )
    if not ok or len(params) > 1:
        raise ProtocolError(
            f"Content-Type {short_repr(content_type)} is not allowed "
            "(expected application/json or application/json; charset=utf-8)"
        )
    if len(_ACCEPTED_CONTENT_TYPES) < 64:
        _ACCEPTED_CONTENT_TYPES.add(content_type)


#: Content-Type values already accepted (bounded): every client sends the same one or two.
_ACCEPTED_CONTENT_TYPES: Set[Optional[str]] = set()


def parse_post_body(body: bytes, content_type: Optional[str]) -> Tuple[str, Any]:
    """Decode a tracker-protocol POST body into ``(schema URI, data)``.

    Checks the content type, UTF-8, JSON syntax and the ``{schema, data}`` shape, and that
    the schema is ``payload_data`` 1-0-*. Validation of ``data`` against that schema is the
    caller's job. Raises ``ProtocolError``.
    """
    check_content_type(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = parse_json_text(text)
    except ValueError as exc:
        raise ProtocolError(f"body {exc}") from None
    if not isinstance(document, dict) or "schema" not in document or "data" not in document:
        raise ProtocolError(
            "body is not a self-describing JSON: expected an object with 'schema' and 'data'"
        )
    try:
        key = SchemaKey.parse(document["schema"])
    except ValueError as exc:
        raise ProtocolError(f"body {exc}") from None
    if (
        key.vendor != SNOWPLOW_VENDOR
        or key.name != "payload_data"
        or not key.version.startswith("1-0-")
    ):
        raise ProtocolError(
            f"body schema {key.uri} is not iglu:{SNOWPLOW_VENDOR}/payload_data/jsonschema/1-0-*"
        )
    return document["schema"], document["data"]  # the URI parsed above, as received
