"""The Snowplow-Micro-compatible REST API (``/micro/*``) of the local collector.

Same paths and JSON shapes as Micro, so helpers written against Micro work unchanged:
``/micro/all``, ``/micro/good``, ``/micro/bad``, ``/micro/reset``, ``/micro/events`` and
``/micro/iglu/{vendor}/{name}/jsonschema/{version}``. Lists come back newest first, like Micro.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, NamedTuple, Optional

from .protocol import iso_from_ms
from .schemas import SchemaRegistry
from .store import CollectorStore, StoredEvent
from .validation import utc_now_ms

__all__ = ["VALID_PATHS", "MicroResponse", "handle_micro"]

VALID_PATHS = (
    "/micro/all",
    "/micro/good",
    "/micro/bad",
    "/micro/reset",
    "/micro/events",
    "/micro/iglu/{vendor}/{name}/jsonschema/{version}",
)

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


class MicroResponse(NamedTuple):
    """Status, content type and body of a ``/micro/*`` answer."""

    status: int
    content_type: str
    body: bytes


def _json(status: int, value: Any) -> MicroResponse:
    return MicroResponse(status, JSON_TYPE, json.dumps(value, ensure_ascii=False).encode("utf-8"))


def _text(status: int, text: str) -> MicroResponse:
    return MicroResponse(status, TEXT_TYPE, text.encode("utf-8"))


def _not_found(path: str) -> MicroResponse:
    return _text(404, f"Path {path} not found. Valid paths are: " + ", ".join(VALID_PATHS) + "\n")


def _filters(body: bytes) -> Dict[str, Any]:
    if not body.strip():
        return {}
    document = json.loads(body.decode("utf-8"))
    if not isinstance(document, dict):
        raise ValueError("the filter body must be a JSON object")
    return document


def _limit(filters: Dict[str, Any]) -> Optional[int]:
    limit = filters.get("limit")
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("'limit' must be a non-negative integer")
    return limit


def _select_good(events: List[StoredEvent], filters: Dict[str, Any]) -> List[StoredEvent]:
    event_type = filters.get("event_type")
    schema = filters.get("schema")
    contexts = filters.get("contexts")
    if contexts is not None and not isinstance(contexts, list):
        raise ValueError("'contexts' must be a list of Iglu URIs")
    selected = []
    for event in events:
        if event_type is not None and event_type not in (event.event_type, event.raw_code):
            continue
        if schema is not None and event.schema != schema:
            continue
        if contexts:
            present = set(event.contexts)
            if not all(uri in present for uri in contexts):
                continue
        selected.append(event)
    return selected


def _select_bad(events: List[StoredEvent], filters: Dict[str, Any]) -> List[StoredEvent]:
    vendor, version = filters.get("vendor"), filters.get("version")
    return [
        e
        for e in events
        if (vendor is None or e.ctx.api_vendor == vendor)
        and (version is None or e.ctx.api_version == version)
    ]


def _newest_first(events: List[StoredEvent], limit: Optional[int]) -> List[Dict[str, Any]]:
    events = events[::-1]
    if limit is not None:
        events = events[:limit]
    return [event.to_json() for event in events]


def _iglu(registry: SchemaRegistry, path: str) -> MicroResponse:
    parts = path[len("/micro/iglu/") :].strip("/").split("/")
    if len(parts) != 4 or parts[2] != "jsonschema" or not all(parts):
        return _not_found(path)
    uri = "iglu:" + "/".join(parts)
    document = registry.lookup(uri)
    if document is not None and not (isinstance(document, dict) and "__unreadable__" in document):
        return _json(200, document)
    attempt = {
        "errors": [{"error": "NotFound"}],
        "attempts": 1,
        "lastAttempt": iso_from_ms(utc_now_ms()),
    }
    repositories = ["added schemas", "built-in envelopes"] + [str(r) for r in registry.iglu_roots]
    return _json(404, {"value": {name: dict(attempt) for name in repositories}})


def handle_micro(
    store: CollectorStore, registry: SchemaRegistry, method: str, path: str, body: bytes
) -> MicroResponse:
    """Answer one ``/micro/*`` request (``path`` without the query string)."""
    route = path.rstrip("/") or path
    try:
        if route == "/micro/all" and method in ("GET", "POST", "HEAD"):
            return _json(200, store.counts())
        if route == "/micro/reset" and method in ("GET", "POST"):
            store.reset()
            return _json(200, store.counts())
        if route == "/micro/good" and method in ("GET", "POST", "HEAD"):
            filters = _filters(body) if method == "POST" else {}
            selected = _select_good(store.good(), filters)
            return _json(200, _newest_first(selected, _limit(filters)))
        if route == "/micro/bad" and method in ("GET", "POST", "HEAD"):
            filters = _filters(body) if method == "POST" else {}
            selected = _select_bad(store.bad(), filters)
            return _json(200, _newest_first(selected, _limit(filters)))
        if route == "/micro/events" and method in ("GET", "HEAD"):
            return _json(200, [e["event"] for e in _newest_first(store.good(), None)])
        if route.startswith("/micro/iglu/") and method in ("GET", "HEAD"):
            return _iglu(registry, route)
    except (ValueError, UnicodeDecodeError) as exc:
        return _text(400, f"Invalid request: {exc}\n")
    return _not_found(path)
