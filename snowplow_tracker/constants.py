"""Constants of the tracker protocol as this library emits it."""

from __future__ import annotations

from typing import List

from snowplow_tracker._version import __version__
from snowplow_tracker.self_describing_json import SelfDescribingJson

VERSION = "py-" + __version__
"""Value of the ``tv`` (tracker version) key."""

DEFAULT_ENCODE_BASE64 = True
"""Whether JSON fields are base64-encoded (``cx``/``ue_px``) unless configured otherwise."""

BASE_SCHEMA_PATH = "iglu:com.snowplowanalytics.snowplow"
"""Iglu vendor prefix of Snowplow's own schemas."""

MOBILE_SCHEMA_PATH = "iglu:com.snowplowanalytics.mobile"
"""Iglu vendor prefix of Snowplow's mobile schemas (e.g. the screen view event)."""

SCHEMA_TAG = "jsonschema"
"""Format part of the Iglu URIs built by the tracker."""

CONTEXT_SCHEMA = f"{BASE_SCHEMA_PATH}/contexts/{SCHEMA_TAG}/1-0-1"
"""Schema of the envelope wrapping an event's context entities."""

UNSTRUCT_EVENT_SCHEMA = f"{BASE_SCHEMA_PATH}/unstruct_event/{SCHEMA_TAG}/1-0-0"
"""Schema of the envelope wrapping a self-describing event."""

ContextArray = List[SelfDescribingJson]
"""A list of context entities."""
