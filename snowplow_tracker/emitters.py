"""Emitters (placeholder while the real implementation is written; signatures are final)."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import requests

logger = logging.getLogger("snowplow_tracker.emitters")

DEFAULT_MAX_LENGTH = 10
PAYLOAD_DATA_SCHEMA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
PROTOCOLS = {"http", "https"}
METHODS = {"get", "post"}


class Emitter:
    """Synchronous emitter (placeholder)."""

    def __init__(
        self,
        endpoint: str,
        protocol: str = "https",
        port: Optional[int] = None,
        method: str = "post",
        batch_size: Optional[int] = None,
        on_success: Optional[Callable[[List[Dict[str, Any]]], None]] = None,
        on_failure: Optional[Callable[[int, List[Dict[str, Any]]], None]] = None,
        byte_limit: Optional[int] = None,
        request_timeout: Optional[Union[float, Tuple[float, float]]] = None,
        max_retry_delay_seconds: int = 60,
        buffer_capacity: Optional[int] = None,
        custom_retry_codes: Optional[Dict[int, bool]] = None,
        event_store: Any = None,
        session: Optional[requests.Session] = None,
        **extras: Any,
    ) -> None:
        self.endpoint = endpoint
        self.method = method
        self.buffer: List[Dict[str, Any]] = []

    def input(self, payload: Dict[str, Any]) -> None:
        self.buffer.append(payload)

    def flush(self) -> None:
        pass

    def sync_flush(self) -> None:
        pass

    def async_flush(self) -> None:
        pass


class AsyncEmitter(Emitter):
    """Asynchronous emitter (placeholder)."""
