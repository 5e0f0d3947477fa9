"""Payload builders shared by the collector tests."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Dict, List, Optional

TP2 = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
CONTEXTS_100 = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
LINK_CLICK = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1"
ADD_TO_CART = "iglu:com.snowplowanalytics.snowplow/add_to_cart/jsonschema/1-0-0"
WEB_PAGE = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
PAGE_VIEW = "iglu:com.snowplowanalytics.snowplow/page_view/jsonschema/1-0-0"
JSON_UTF8 = "application/json; charset=utf-8"


def b64(value: Any, *, pad: bool = True) -> str:
    """URL-safe base64 of the JSON of ``value``."""
    text = base64.urlsafe_b64encode(json.dumps(value).encode("utf-8")).decode("ascii")
    return text if pad else text.rstrip("=")


def sdj(schema: str, data: Any) -> Dict[str, Any]:
    """A self-describing JSON."""
    return {"schema": schema, "data": data}


def unstruct(schema: str, data: Any) -> Dict[str, Any]:
    """An ``unstruct_event`` envelope around one self-describing event."""
    return sdj(UNSTRUCT, sdj(schema, data))


def contexts(*entities: Dict[str, Any], envelope: str = CONTEXTS) -> Dict[str, Any]:
    """A ``contexts`` envelope."""
    return sdj(envelope, list(entities))


def web_page(page_id: Optional[str] = None) -> Dict[str, Any]:
    """A valid ``web_page`` entity."""
    return sdj(WEB_PAGE, {"id": page_id or str(uuid.uuid4())})


def page_view(**extra: str) -> Dict[str, str]:
    """Parameters of a valid page view."""
    params = {
        "e": "pv",
        "p": "web",
        "tv": "py-1.1.0",
        "eid": str(uuid.uuid4()),
        "dtm": "1700000000000",
        "aid": "test-app",
        "url": "https://example.com/page",
    }
    params.update(extra)
    return params


def link_click(**extra: str) -> Dict[str, str]:
    """Parameters of a valid self-describing link click (base64-encoded)."""
    params = {
        "e": "ue",
        "p": "srv",
        "tv": "py-1.1.0",
        "eid": str(uuid.uuid4()),
        "ue_px": b64(unstruct(LINK_CLICK, {"targetUrl": "https://example.com/next"})),
    }
    params.update(extra)
    return params


def body(*events: Dict[str, Any], schema: str = PAYLOAD_DATA) -> Dict[str, Any]:
    """A ``payload_data`` POST body."""
    return {"schema": schema, "data": list(events)}


def body_bytes(*events: Dict[str, Any], schema: str = PAYLOAD_DATA) -> bytes:
    """The JSON bytes of a ``payload_data`` POST body."""
    return json.dumps(body(*events, schema=schema)).encode("utf-8")


def errors_of(rows: List[Dict[str, Any]]) -> List[str]:
    """All error strings of bad rows, flattened."""
    return [error for row in rows for error in row["errors"]]


def raw_exchange(host: str, port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes, half-close nothing, and read until the server closes (or ``timeout``)."""
    import socket
    import time

    chunks = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    """Status code of a raw HTTP response."""
    return int(response.split(b" ", 2)[1])
