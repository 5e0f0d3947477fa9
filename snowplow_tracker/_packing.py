"""Packing events into HTTP requests: POST bodies and request-sized batches.

Pure functions, no I/O. The POST body is the ``payload_data`` self-describing JSON written
with ``json.dumps`` default settings, exactly as snowplow-tracker 1.1.0 writes it.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional

PAYLOAD_DATA_SCHEMA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"

_BODY_PREFIX = '{"schema": "' + PAYLOAD_DATA_SCHEMA + '", "data": ['
_BODY_SUFFIX = "]}"
#: Bytes the envelope adds around the events of a POST body.
ENVELOPE_OVERHEAD = len(_BODY_PREFIX) + len(_BODY_SUFFIX)
#: Bytes a millisecond ``stm`` pair adds to an event that lacks one: ``, "stm": "1700000000000"``.
STM_OVERHEAD = len(', "stm": "1700000000000"')
_SEPARATOR = ", "

_encode = json.JSONEncoder().encode


def post_body(events: List[Dict[str, Any]]) -> str:
    """The POST body for ``events``: ``{"schema": <payload_data 1-0-4>, "data": [...]}``."""
    return _BODY_PREFIX + _SEPARATOR.join([_encode(e) for e in events]) + _BODY_SUFFIX


def event_size(event: Dict[str, Any]) -> int:
    """Bytes ``event`` takes in a POST body once it carries an ``stm``."""
    size = len(_encode(event))
    return size if "stm" in event else size + STM_OVERHEAD


def split_batches(
    events: List[Dict[str, Any]], max_count: int, max_bytes: Optional[int]
) -> Iterator[List[Dict[str, Any]]]:
    """Split ``events`` into request batches of at most ``max_count`` events each.

    With ``max_bytes``, a batch's POST body stays within ``max_bytes`` too; an event too large
    to fit any body goes alone in a batch of its own (see :func:`is_oversized`).
    """
    max_count = max(1, max_count)
    if max_bytes is None:
        for start in range(0, len(events), max_count):
            yield events[start : start + max_count]
        return
    batch: List[Dict[str, Any]] = []
    size = ENVELOPE_OVERHEAD
    for event in events:
        added = event_size(event) + (len(_SEPARATOR) if batch else 0)
        if batch and (len(batch) >= max_count or size + added > max_bytes):
            yield batch
            batch, size = [], ENVELOPE_OVERHEAD
            added = event_size(event)
        batch.append(event)
        size += added
    if batch:
        yield batch


def is_oversized(event: Dict[str, Any], max_bytes: Optional[int]) -> bool:
    """True when ``event`` alone makes a POST body larger than ``max_bytes``."""
    return max_bytes is not None and ENVELOPE_OVERHEAD + event_size(event) > max_bytes
