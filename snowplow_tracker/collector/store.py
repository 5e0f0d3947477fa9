"""Bounded in-memory storage of what the local collector received.

Good and bad events are kept in arrival order with one cap on their total number (the oldest
event is dropped first and counted). The raw log (event ids, parameter dicts, HTTP requests)
is bounded too. All methods are thread-safe.

What a request brings is stored per request (one lock acquisition per request); good events
stored without validation are kept as their parameter dicts and become ``StoredEvent``
records only when read.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from operator import countOf, methodcaller
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from .validation import EventCheck, RequestContext, render_event

__all__ = ["CollectorStore", "EventSummary", "RequestRecord", "StoredEvent"]

EXTRACTION_FAILED = "Error while extracting event(s) from collector payload and validating it/them."
VALIDATION_FAILED = "Error while validating the event."
_get_eid = methodcaller("get", "eid")
#: Longest request body kept in a bad row's ``collectorPayload`` (characters).
MAX_STORED_BODY_CHARS = 65536


class EventSummary(NamedTuple):
    """A light view of one stored event, handed to listeners (e.g. the CLI printer)."""

    good: bool
    event_type: Optional[str]
    schema: Optional[str]
    app_id: Optional[str]
    event_id: Optional[str]
    errors: List[str]
    notes: List[str]


class StoredEvent:
    """One good event or bad row, rendered to Micro's JSON shape on demand."""

    __slots__ = ("_check", "_describe", "ctx", "errors", "good", "params")

    def __init__(
        self,
        *,
        good: bool,
        params: Optional[Mapping[str, Any]],
        ctx: RequestContext,
        check: Optional[EventCheck] = None,
        errors: Optional[List[str]] = None,
        describe: Optional[Callable[[Mapping[str, Any]], EventCheck]] = None,
    ) -> None:
        self.good = good
        self.params = params
        self.ctx = ctx
        self._check = check
        self._describe = describe
        self.errors: List[str] = errors if errors is not None else []

    @classmethod
    def good_events(
        cls,
        events: Sequence[Mapping[str, Any]],
        ctx: RequestContext,
        describe: Callable[[Mapping[str, Any]], EventCheck],
    ) -> List[StoredEvent]:
        """Good events stored without validation (their check is computed when read)."""
        new = object.__new__
        records: List[StoredEvent] = []
        append = records.append
        for params in events:
            record: StoredEvent = new(cls)
            record.good = True
            record.params = params
            record.ctx = ctx
            record._check = None
            record._describe = describe
            record.errors = []
            append(record)
        return records

    @property
    def check(self) -> EventCheck:
        """The validation result (computed lazily when validation was turned off)."""
        if self._check is None:
            if self._describe is not None and self.params is not None:
                self._check = self._describe(self.params)
            else:
                self._check = EventCheck()
        return self._check

    @property
    def event_type(self) -> Optional[str]:
        """Enriched event type (``page_view``, ``unstruct``, ...)."""
        return self.check.event_type if self.params is not None else None

    @property
    def schema(self) -> Optional[str]:
        """Iglu URI of the event (the self-describing schema for ``unstruct``)."""
        return self.check.schema if self.params is not None else None

    @property
    def contexts(self) -> List[str]:
        """Iglu URIs of the attached entities."""
        return list(self.check.contexts) if self.params is not None else []

    @property
    def raw_code(self) -> Optional[str]:
        """The raw ``e`` parameter."""
        code = self.params.get("e") if self.params is not None else None
        return code if isinstance(code, str) else None

    def summary(self) -> EventSummary:
        """A light view of this event for listeners."""
        params = self.params or {}
        app_id, event_id = params.get("aid"), params.get("eid")
        return EventSummary(
            self.good,
            self.event_type,
            self.schema,
            app_id if isinstance(app_id, str) else None,
            event_id if isinstance(event_id, str) else None,
            list(self.errors),
            list(self.check.notes) if self.params is not None else [],
        )

    def to_json(self) -> Dict[str, Any]:
        """Micro's ``GoodEvent`` or ``BadEvent`` JSON object."""
        if self.good:
            assert self.params is not None
            check = self.check
            return {
                "rawEvent": self.ctx.raw_event(self.params),
                "eventType": check.event_type,
                "schema": check.schema,
                "contexts": list(check.contexts),
                "event": render_event(self.params, check, self.ctx),
                "incomplete": False,
            }
        payload = self.ctx.collector_payload()
        body = payload.get("body")
        if isinstance(body, str) and len(body) > MAX_STORED_BODY_CHARS:
            payload["body"] = body[:MAX_STORED_BODY_CHARS]
        return {
            "collectorPayload": payload,
            "rawEvent": self.ctx.raw_event(self.params) if self.params is not None else None,
            "errors": list(self.errors),
        }


class RequestRecord:
    """One logged tracking request; ``to_dict()`` gives the public ``requests()`` item.

    Kept as a small object (not a dict) because one is made for every request: the header
    dict and the public shape are built only when somebody reads the log.
    """

    __slots__ = (
        "api",
        "body",
        "client",
        "error",
        "fault",
        "header_items",
        "method",
        "path",
        "query",
        "status",
        "timestamp",
        "timestamp_ms",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        header_items: List[Tuple[str, str]],
        timestamp: float,
        client: str,
        api: Tuple[str, str],
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.header_items = header_items
        self.body: Optional[bytes] = None
        self.status: Optional[int] = None
        self.fault: Optional[str] = None
        self.error: Optional[str] = None
        self.timestamp = timestamp
        self.timestamp_ms = int(timestamp * 1000)
        self.client = client
        self.api = api

    def to_dict(self) -> Dict[str, Any]:
        """``method``, ``path``, ``query``, ``headers``, ``body``, ``status``, ``fault``,
        ``error``, ``timestamp`` and ``client`` of the request."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.header_items),
            "body": self.body,
            "status": self.status,
            "fault": self.fault,
            "error": self.error,
            "timestamp": self.timestamp,
            "client": self.client,
        }


class _Chunk:
    """The stored events of one request, in arrival order.

    ``items`` holds ``StoredEvent`` records, or (``lazy``) the parameter dicts of good
    events stored without validation, turned into records only when somebody reads them.
    ``start`` is the index of the oldest item still stored (older ones were evicted).
    """

    __slots__ = ("ctx", "describe", "items", "lazy", "start")

    def __init__(
        self,
        items: List[Any],
        ctx: Optional[RequestContext] = None,
        describe: Optional[Callable[[Mapping[str, Any]], EventCheck]] = None,
    ) -> None:
        self.items = items
        self.ctx = ctx
        self.describe = describe
        self.lazy = describe is not None
        self.start = 0

    def records(self) -> List[StoredEvent]:
        """The stored records (made now for a lazy chunk, then kept)."""
        if self.lazy:
            assert self.ctx is not None and self.describe is not None
            self.items = StoredEvent.good_events(self.items, self.ctx, self.describe)
            self.lazy = False
        items: List[StoredEvent] = self.items
        return items[self.start :] if self.start else items


class CollectorStore:
    """Thread-safe bounded storage plus counters; ``wait_until`` blocks on new arrivals.

    Everything one request brings (its log entry, the events received, the events stored)
    is added under one lock acquisition with ``add_request``, and kept per request; the
    per-event views (``good()``, ``event_ids()``, ...) are built when they are read.
    """

    def __init__(
        self,
        max_events: int = 100_000,
        max_requests: int = 10_000,
        max_request_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if max_events < 1 or max_requests < 1:
            raise ValueError("max_events and max_requests must be positive")
        self.max_events = max_events
        self.max_requests = max_requests
        self.max_request_bytes = max_request_bytes
        self._cond = threading.Condition()
        self._waiting = 0
        self._chunks: Deque[_Chunk] = deque()
        self._stored = 0  # events in ``_chunks``
        self._stored_good = 0
        # One (events, number of ids) pair per request:
        self._received: Deque[Tuple[Sequence[Mapping[str, Any]], int]] = deque()
        self._received_kept = 0  # events in ``_received``
        self._ids_kept = 0  # event ids in ``_received``
        self._requests: Deque[RequestRecord] = deque()
        self._request_bytes = 0
        self.requests_received = 0
        self.events_received = 0
        self.events_dropped = 0
        self.good_received = 0
        self.bad_received = 0

    # -- writing (call with the lock held) --------------------------------------------------

    def _log_request(self, entry: RequestRecord) -> None:
        body = entry.body
        self.requests_received += 1
        requests = self._requests
        requests.append(entry)
        if body:
            self._request_bytes += len(body)
        if len(requests) > self.max_requests or self._request_bytes > self.max_request_bytes:
            while len(requests) > 1 and (
                len(requests) > self.max_requests or self._request_bytes > self.max_request_bytes
            ):
                old = requests.popleft().body
                if old:
                    self._request_bytes -= len(old)

    def _log_received(self, events: Sequence[Mapping[str, Any]]) -> None:
        count = len(events)
        if not count:
            return
        ids = countOf(map(type, map(_get_eid, events)), str)
        self.events_received += count
        received = self._received
        received.append((events, ids))
        self._received_kept += count
        self._ids_kept += ids
        # Keep the requests that hold the last ``max_events`` events and the last
        # ``max_events`` ids (events without an id do not count for the latter).
        limit = self.max_events
        while len(received) > 1:
            old, old_ids = received[0]
            if self._received_kept - len(old) < limit or self._ids_kept - old_ids < limit:
                break
            received.popleft()
            self._received_kept -= len(old)
            self._ids_kept -= old_ids

    def _store(self, chunk: _Chunk, count: int, good: int) -> None:
        self._chunks.append(chunk)
        self._stored += count
        self._stored_good += good
        self.good_received += good
        self.bad_received += count - good
        if self._stored > self.max_events:
            self._evict()

    def _evict(self) -> None:
        chunks = self._chunks
        excess = self._stored - self.max_events
        while excess > 0:
            chunk = chunks[0]
            left = len(chunk.items) - chunk.start
            take = min(left, excess)
            if chunk.lazy:
                good = take
            else:
                good = sum(1 for r in chunk.items[chunk.start : chunk.start + take] if r.good)
            chunk.start += take
            if take == left:
                chunks.popleft()
            excess -= take
            self._stored -= take
            self._stored_good -= good
            self.events_dropped += take

    def _wake(self) -> None:
        if self._waiting:
            self._cond.notify_all()

    # -- writing ----------------------------------------------------------------------------

    def add_request(
        self,
        entry: Optional[RequestRecord],
        received: Sequence[Mapping[str, Any]],
        events: Optional[List[StoredEvent]] = None,
        *,
        good_params: Optional[Sequence[Mapping[str, Any]]] = None,
        ctx: Optional[RequestContext] = None,
        describe: Optional[Callable[[Mapping[str, Any]], EventCheck]] = None,
    ) -> None:
        """Everything one request brings, under one lock: its log entry (unless ``None``,
        i.e. already logged), the events received, and the events to store: ``events``
        (records), or ``good_params`` (good events stored without validation, made into
        records with ``ctx`` and ``describe`` when read)."""
        with self._cond:
            if entry is not None:
                self._log_request(entry)
            if received:
                self._log_received(received)
            if events:
                good = sum(1 for event in events if event.good)
                self._store(_Chunk(events), len(events), good)
            elif good_params:
                count = len(good_params)
                self._store(_Chunk(list(good_params), ctx, describe), count, count)
            self._wake()

    def record_request(self, entry: RequestRecord) -> None:
        """Append a request to the bounded request log and count it."""
        with self._cond:
            self._log_request(entry)
            self._wake()

    def record_received(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Count received events (duplicates included) and log their ids and parameters."""
        with self._cond:
            self._log_received(events)

    def store(self, events: List[StoredEvent]) -> None:
        """Store good events and bad rows, dropping the oldest when over the cap."""
        if events:
            self.add_request(None, (), events)

    def reset(self) -> None:
        """Forget every event, request and counter."""
        with self._cond:
            self._chunks.clear()
            self._stored = self._stored_good = 0
            self._received.clear()
            self._received_kept = self._ids_kept = 0
            self._requests.clear()
            self._request_bytes = 0
            self.requests_received = self.events_received = self.events_dropped = 0
            self.good_received = self.bad_received = 0
            self._cond.notify_all()

    # -- reading ----------------------------------------------------------------------------

    def _records(self) -> List[StoredEvent]:
        records: List[StoredEvent] = []
        for chunk in self._chunks:
            records.extend(chunk.records())
        return records

    def good(self) -> List[StoredEvent]:
        """Stored good events, oldest first."""
        with self._cond:
            return [record for record in self._records() if record.good]

    def bad(self) -> List[StoredEvent]:
        """Stored bad rows, oldest first."""
        with self._cond:
            if self._stored_good == self._stored:
                return []
            return [record for record in self._records() if not record.good]

    def counts(self) -> Dict[str, int]:
        """``{"total", "good", "bad"}`` of what is stored now."""
        with self._cond:
            total, good = self._stored, self._stored_good
        return {"total": total, "good": good, "bad": total - good}

    def event_ids(self) -> List[str]:
        """Every ``eid`` received (the last ``max_events``), duplicates included, oldest first."""
        with self._cond:
            chunks = list(self._received)
        ids = [
            eid
            for events, _ in chunks
            for eid in (params.get("eid") for params in events)
            if isinstance(eid, str)
        ]
        skip = len(ids) - self.max_events
        return ids[skip:] if skip > 0 else ids

    def payloads(self) -> List[Dict[str, Any]]:
        """The parameter dict of every event received (the last ``max_events``), oldest first."""
        with self._cond:
            chunks = list(self._received)
        events = [params for chunk, _ in chunks for params in chunk]
        skip = len(events) - self.max_events
        return [dict(params) for params in (events[skip:] if skip > 0 else events)]

    def requests(self) -> List[RequestRecord]:
        """The logged tracking requests, oldest first."""
        with self._cond:
            return list(self._requests)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` (evaluated under the lock) is true or ``timeout`` passes."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1
            return True
