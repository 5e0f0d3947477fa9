"""Emitters: they buffer the events a tracker produces and send them to a collector.

This is the 1.1.0 import path of every emitter name. :class:`Emitter` (in ``_emitter``)
sends in the caller's thread, never longer than its request timeout and never during a
retry backoff; :class:`AsyncEmitter` (in ``_async_pipeline``) never does I/O in the caller's
thread. See ``docs/delivery.md`` for what each guarantees.

``requests`` is importable from here, as in 1.1.0: tests that patch
``snowplow_tracker.emitters.requests.post`` patch the ``requests`` module itself, and
emitters without a ``session`` then send through the patched function.
"""

from __future__ import annotations

import requests

from snowplow_tracker._async_pipeline import AsyncEmitter
from snowplow_tracker._emitter import (
    DEFAULT_BUFFER_CAPACITY,
    DEFAULT_EXIT_TIMEOUT,
    DEFAULT_MAX_LENGTH,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SYNC_FLUSH_TIMEOUT,
    METHODS,
    OVERFLOW_POLICIES,
    PROTOCOLS,
    Emitter,
    FlushTimer,
    Requester,
    logger,
)
from snowplow_tracker._packing import PAYLOAD_DATA_SCHEMA

# Present the classes under their public path, as 1.1.0 did (reprs, pickling, docs).
for _public in (Emitter, AsyncEmitter, FlushTimer, Requester):
    _public.__module__ = __name__
del _public

__all__ = [
    "DEFAULT_BUFFER_CAPACITY",
    "DEFAULT_EXIT_TIMEOUT",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SYNC_FLUSH_TIMEOUT",
    "METHODS",
    "OVERFLOW_POLICIES",
    "PAYLOAD_DATA_SCHEMA",
    "PROTOCOLS",
    "AsyncEmitter",
    "Emitter",
    "FlushTimer",
    "Requester",
    "logger",
    "requests",
]
