"""The local collector: an HTTP server speaking the Snowplow tracker protocol.

``LocalCollector`` runs an asyncio HTTP/1.1 keep-alive server (``server_async``: one event
loop, every connection multiplexed on it) in a background thread. It answers like the
Snowplow stream collector (pixel for GET, ``ok`` for POST, CORS, cookie), validates every
event like the enrichment does, stores good events and bad rows in bounded memory, serves a
Snowplow-Micro-compatible REST API under ``/micro/``, and can inject faults (failing
statuses, delays, dropped connections) for testing clients.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import Counter
from operator import countOf
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
)

from .._version import __version__
from .faults import FaultPlan
from .protocol import (
    SNOWPLOW_VENDOR,
    ProtocolError,
    decode_query,
    parse_post_body,
)
from .schemas import PathLike, SchemaRegistry
from .server_async import PIXEL_GIF, AsyncHttpServer
from .store import (
    EXTRACTION_FAILED,
    VALIDATION_FAILED,
    CollectorStore,
    EventSummary,
    RequestRecord,
    StoredEvent,
)
from .validation import COLLECTOR_NAME, EventValidator, RequestContext

__all__ = ["DEFAULT_MAX_BODY_BYTES", "PIXEL_GIF", "LocalCollector"]

logger = logging.getLogger("snowplow_tracker.collector.server")

#: Default request body limit (bytes); larger bodies get 413.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

_TEXT = "text/plain; charset=utf-8"
_TP1 = (SNOWPLOW_VENDOR, "tp1")
_TP2 = (SNOWPLOW_VENDOR, "tp2")
_SIZE_VIOLATION_SCHEMA = (
    "iglu:com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0"
)
_ANONYMOUS_DROPPED_HEADERS = frozenset(("x-forwarded-for", "x-real-ip", "cookie"))
_DRAIN_CAP = 64 * 1024 * 1024
_TIMEOUTS = (socket.timeout, TimeoutError)

Listener = Callable[[EventSummary], None]


def _size_violation(
    ctx: RequestContext, request_line: str, size: int, limit: int
) -> Dict[str, Any]:
    summary = "\n".join([request_line, *ctx.headers])
    cap = 1073741824
    return {
        "schema": _SIZE_VIOLATION_SCHEMA,
        "data": {
            "processor": {"artifact": COLLECTOR_NAME, "version": __version__},
            "failure": {
                "timestamp": ctx.timestamp_iso,
                "maximumAllowedSizeBytes": min(limit, cap),
                "actualSizeBytes": min(size, cap),
                "expectation": "oversized collector payload: the request body is over the limit",
            },
            "payload": summary[: max(limit // 10, 0)],
        },
    }


class LocalCollector:
    """A local, validating Snowplow collector running in a background thread.

    Use it as a context manager (or call ``start()``/``stop()``)::

        with LocalCollector(iglu_dirs=["path/to/iglu"]) as collector:
            emitter = Emitter(collector.endpoint)
            ...
            assert collector.wait_for(3)
            assert not collector.bad()

    ``port=0`` (the default) picks a free port; ``endpoint``, ``host`` and ``port`` tell where
    it listens once started. ``good()``/``bad()`` return Micro-shaped dicts, oldest first.

    Args:
        host: Address to bind; the loopback address by default.
        port: TCP port; 0 picks a free one.
        iglu_dirs: Static Iglu repositories
            (``<dir>/schemas/<vendor>/<name>/jsonschema/<version>``), searched in order.
        lenient: Accept events whose schemas are not found (the event gets a note).
        validate: Check events; when False, every parsable event is stored as good.
        max_body_bytes: Largest request body accepted; larger ones get 413 (default 2 MiB).
        max_events: Stored events kept; the oldest are dropped first.
        max_requests: Tracking requests kept in the request log.
        max_request_log_bytes: Request body bytes kept in the request log.
        body_read_timeout: Seconds a request body may take to arrive; then 408.
        idle_timeout: Seconds an idle keep-alive connection is kept open.
        cookie_name: Name of the network user id cookie (``None``: no cookie is read or set).
        on_event: Called with an ``EventSummary`` for every stored event, from the server's
            threads.
    """

    #: Protocol class for connections (``None``: the server's own); an extension point for
    #: subclasses that serve more paths, such as the benchmarks' collector.
    _connection_class: Optional[Callable[[AsyncHttpServer], Any]] = None

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        iglu_dirs: Sequence[PathLike] = (),
        lenient: bool = False,
        validate: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_events: int = 100_000,
        max_requests: int = 10_000,
        max_request_log_bytes: int = 64 * 1024 * 1024,
        body_read_timeout: float = 5.0,
        idle_timeout: float = 30.0,
        cookie_name: Optional[str] = "sp",
        on_event: Optional[Listener] = None,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        self._requested_host = host
        self._requested_port = port
        self.registry = SchemaRegistry(iglu_dirs, lenient=lenient)
        self.validator = EventValidator(self.registry)
        self.validate = validate
        self.max_body_bytes = max_body_bytes
        self.body_read_timeout = body_read_timeout
        self.idle_timeout = idle_timeout
        self.cookie_name = cookie_name
        self._store = CollectorStore(max_events, max_requests, max_request_log_bytes)
        self._faults = FaultPlan()
        self._listeners: List[Listener] = [on_event] if on_event is not None else []
        self._server: Optional[AsyncHttpServer] = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalCollector:
        """Bind and start serving in a background thread; returns ``self``. Idempotent."""
        with self._lifecycle:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = AsyncHttpServer((self._requested_host, self._requested_port), self)
            if self._connection_class is not None:
                server.connection_class = self._connection_class
            self._server = server
            server.start()
            logger.info("local collector listening on %s", self.endpoint)
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open connections and join every thread. Idempotent."""
        with self._lifecycle:
            server = self._server
            if server is None:
                return
            self._stopping.set()
            server.stop(timeout)
            self._server = None
            logger.info("local collector stopped")

    def __enter__(self) -> LocalCollector:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    def _require_server(self) -> AsyncHttpServer:
        if self._server is None:
            raise RuntimeError("the collector is not running: call start() or use 'with'")
        return self._server

    @property
    def host(self) -> str:
        """Host (IP address) the collector is bound to."""
        return self._require_server().server_name

    @property
    def port(self) -> int:
        """TCP port the collector listens on."""
        return self._require_server().server_port

    @property
    def endpoint(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (ready for ``Emitter(endpoint)``)."""
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on this collector."""
        return self.endpoint + ("" if path.startswith("/") else "/") + path

    # -- configuration ----------------------------------------------------------------------

    @property
    def lenient(self) -> bool:
        """Whether unknown schemas are accepted."""
        return self.registry.lenient

    def add_schema(self, uri: str, schema: Mapping[str, Any]) -> None:
        """Register a JSON Schema for ``uri`` (wins over the Iglu directories)."""
        self.registry.add_schema(uri, dict(schema))

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(summary)`` for every stored event (from the server threads)."""
        self._listeners.append(listener)

    # -- results ----------------------------------------------------------------------------

    def good(self) -> List[Dict[str, Any]]:
        """Good events as Micro ``GoodEvent`` dicts, oldest first."""
        return [event.to_json() for event in self._store.good()]

    def bad(self) -> List[Dict[str, Any]]:
        """Bad rows as Micro ``BadEvent`` dicts, oldest first."""
        return [event.to_json() for event in self._store.bad()]

    def summary(self) -> Dict[str, int]:
        """``{"total", "good", "bad"}`` of the stored events (like ``/micro/all``)."""
        return self._store.counts()

    def reset(self) -> None:
        """Forget all events, requests and counters (pending faults are kept)."""
        self._store.reset()

    def event_ids(self) -> List[str]:
        """Every ``eid`` received (duplicates and failed requests included), arrival order."""
        return self._store.event_ids()

    def duplicate_event_ids(self) -> List[str]:
        """Event ids received more than once, in order of first arrival."""
        counts = Counter(self._store.event_ids())
        return [event_id for event_id, n in counts.items() if n > 1]

    def payloads(self) -> List[Dict[str, Any]]:
        """The raw parameter dict of every event received, arrival order."""
        return self._store.payloads()

    def requests(self) -> List[Dict[str, Any]]:
        """Every tracking request: method, path, query, headers, body, status, fault, error."""
        return [entry.to_dict() for entry in self._store.requests()]

    @property
    def requests_received(self) -> int:
        """Tracking requests received since the last reset."""
        return self._store.requests_received

    @property
    def events_received(self) -> int:
        """Events received since the last reset, duplicates and failed requests included."""
        return self._store.events_received

    @property
    def events_dropped(self) -> int:
        """Stored events evicted because of the ``max_events`` cap since the last reset."""
        return self._store.events_dropped

    def stats(self) -> Dict[str, int]:
        """All counters in one dict."""
        store = self._store
        return {
            **store.counts(),
            "requests_received": store.requests_received,
            "events_received": store.events_received,
            "events_dropped": store.events_dropped,
            "good_received": store.good_received,
            "bad_received": store.bad_received,
        }

    def wait_for(self, count: int, timeout: float = 5.0, *, good: bool = False) -> bool:
        """Wait until ``count`` events (good and bad, or good only) arrived since the last reset.

        Returns True as soon as they are there, False after ``timeout`` seconds.
        """
        store = self._store
        if good:
            return store.wait_until(lambda: store.good_received >= count, timeout)
        return store.wait_until(lambda: store.good_received + store.bad_received >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` tracking requests arrived since the last reset."""
        store = self._store
        return store.wait_until(lambda: store.requests_received >= count, timeout)

    def assert_counts(
        self, good: Optional[int] = None, bad: Optional[int] = None, timeout: float = 5.0
    ) -> None:
        """Wait for and assert exact good/bad counts; the message lists bad-row errors."""
        expected = (good or 0) + (bad or 0)
        self.wait_for(expected, timeout, good=bad is None)
        counts = self.summary()
        mismatch = (good is not None and counts["good"] != good) or (
            bad is not None and counts["bad"] != bad
        )
        if mismatch:
            reasons = [error for row in self.bad() for error in row["errors"][1:]][:20]
            raise AssertionError(
                f"expected good={good} bad={bad}, got {counts}; bad-row errors: {reasons}"
            )

    # -- faults -----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        *,
        body: bytes = b"",
        store: bool = False,
    ) -> None:
        """Answer the next ``count`` tracking requests with ``status`` (events not stored)."""
        self._faults.fail_next(count, status, headers, body=body, store=store)

    def fail_fraction(
        self,
        fraction: float,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        *,
        seed: Optional[int] = 0,
        requests: Optional[int] = None,
        body: bytes = b"",
        store: bool = False,
    ) -> None:
        """Fail each tracking request with probability ``fraction`` (seeded RNG)."""
        self._faults.fail_fraction(
            fraction, status, headers, seed=seed, requests=requests, body=body, store=store
        )

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Wait ``seconds`` before answering each of the next ``count`` tracking requests."""
        self._faults.delay_next(count, seconds)

    def drop_next(self, count: int = 1, *, mode: str = "close", store: bool = False) -> None:
        """Drop the connection of the next ``count`` tracking requests (see ``DROP_MODES``)."""
        self._faults.drop_next(count, mode=mode, store=store)

    def clear_faults(self) -> None:
        """Cancel every pending fault."""
        self._faults.clear()

    def pending_faults(self) -> Dict[str, int]:
        """Number of pending fault rules by kind."""
        return self._faults.pending()

    # -- ingestion --------------------------------------------------------------------------

    def _extract(
        self, ctx: RequestContext, body: Optional[bytes]
    ) -> Tuple[List[Dict[str, Any]], List[str], List[Dict[str, Any]]]:
        """Split a request into events; returns (events, payload errors, received dicts)."""
        api = (ctx.api_vendor, ctx.api_version)
        if api not in (_TP1, _TP2):
            return [], [f"vendor/version combination {api[0]}/{api[1]} is not supported"], []
        try:
            query = decode_query(ctx.query) if ctx.query else {}
        except ProtocolError as exc:
            return [], exc.errors, []
        if body is None:
            if not query:
                return [], ["empty query string: the event must be in the query string"], []
            return [query], [], [query]
        if not body:
            if ctx.content_type:
                return [], [f"Content-Type {ctx.content_type} is present but the body is empty"], []
            if not query:
                return [], ["empty body and empty query string"], []
            return [query], [], [query]
        try:
            uri, data = parse_post_body(body, ctx.content_type)
        except ProtocolError as exc:
            return [], exc.errors, []
        if isinstance(data, list):
            received = (
                data
                if countOf(map(type, data), dict) == len(data)
                else [item for item in data if isinstance(item, dict)]
            )
        else:
            received = []
        if self.validate:
            outcome = self.registry.validate(uri, data)
            if outcome.errors:
                version = uri.rsplit("/", 1)[-1]
                return [], [f"payload_data {version}: {e}" for e in outcome.errors], received
        elif len(received) != (len(data) if isinstance(data, list) else -1):
            return [], ["'data' must be an array of objects"], received
        events = [{**item, **query} for item in received] if query else received
        return events, [], events

    def _ingest(
        self,
        ctx: RequestContext,
        body: Optional[bytes],
        *,
        store: bool,
        entry: Optional[RequestRecord] = None,
    ) -> Sequence[Mapping[str, Any]]:
        """Extract, check and store the events of one request (and log ``entry`` if given).

        Returns the events received (each a parameter dict).
        """
        events, problems, received = self._extract(ctx, body)
        records: Optional[List[StoredEvent]] = None
        if problems:
            records = [
                StoredEvent(good=False, params=None, ctx=ctx, errors=[EXTRACTION_FAILED, *problems])
            ]
            if body is not None:
                ctx.body = body.decode("utf-8", "replace")
        elif self.validate:
            # Good events keep no validation result (their decoded view is made again when
            # read): a stored result would hold a dozen objects per event for the garbage
            # collector to walk. Listeners get the full result at once.
            check, describe = self.validator.check, self.validator.describe
            keep = bool(self._listeners)
            results = [check(params) for params in events]
            if keep or any(result.errors for result in results):
                records = [
                    StoredEvent(
                        good=False,
                        params=params,
                        ctx=ctx,
                        check=result,
                        errors=[VALIDATION_FAILED, *result.errors],
                    )
                    if result.errors
                    else StoredEvent(
                        good=True,
                        params=params,
                        ctx=ctx,
                        check=result if keep else None,
                        describe=describe,
                    )
                    for params, result in zip(events, results)
                ]
                if body is not None and not all(record.good for record in records):
                    ctx.body = body.decode("utf-8", "replace")
        elif store and self._listeners:
            records = StoredEvent.good_events(events, ctx, self.validator.describe)
        if not store:
            self._store.add_request(entry, received)
        elif records is not None:
            self._store.add_request(entry, received, records)
            self._notify(records)
        else:  # no bad event, no listener: the events become records when read
            self._store.add_request(
                entry, received, good_params=events, ctx=ctx, describe=self.validator.describe
            )
        return received

    def _store_size_violation(
        self, ctx: RequestContext, request_line: str, size: int, limit: int
    ) -> None:
        row = _size_violation(ctx, request_line, size, limit)
        record = StoredEvent(
            good=False,
            params=None,
            ctx=ctx,
            errors=[
                f"Payload too large: the request body of {size} bytes is over the limit of "
                f"{limit} bytes (answered 413, nothing stored from it)",
                json.dumps(row),
            ],
        )
        self._store.add_request(None, (), [record])
        self._notify([record])

    def _notify(self, records: List[StoredEvent]) -> None:
        if not self._listeners:
            return
        for record in records:
            summary = record.summary()
            for listener in list(self._listeners):
                try:
                    listener(summary)
                except Exception:
                    logger.exception("collector listener failed")
