"""A local, validating Snowplow collector for development and tests.

It accepts the tracker protocol (``GET /i``, ``POST /com.snowplowanalytics.snowplow/tp2``),
validates every event like the Snowplow pipeline (tracker-protocol rules, then each
self-describing event and entity against JSON Schemas from local Iglu directories), keeps good
events and bad rows in bounded memory, and serves a Snowplow-Micro-compatible REST API.

Three ways to use it:

* Python: ``with LocalCollector(iglu_dirs=[...]) as collector: ...``
* Command line: ``python -m snowplow_tracker.collector --port 9090 --iglu-dir DIR``
* pytest: the ``snowplow_collector`` fixture (plugin ``snowplow_tracker.collector.pytest_plugin``)

Nothing in the tracker pipeline imports this package, and importing it has no side effects.
"""

from __future__ import annotations

from .faults import DROP_MODES, FaultPlan
from .protocol import ProtocolError, SchemaKey
from .schemas import SchemaRegistry, SchemaValidation
from .server import DEFAULT_MAX_BODY_BYTES, PIXEL_GIF, LocalCollector
from .store import EventSummary
from .validation import EventCheck, EventValidator

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DROP_MODES",
    "PIXEL_GIF",
    "EventCheck",
    "EventSummary",
    "EventValidator",
    "FaultPlan",
    "LocalCollector",
    "ProtocolError",
    "SchemaKey",
    "SchemaRegistry",
    "SchemaValidation",
]
