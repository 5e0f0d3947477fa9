"""Bounded in-memory storage of what the local collector received.

Good and bad events are kept in arrival order with one cap on their total number (the oldest
event is dropped first and counted). The raw log (event ids, parameter dicts, HTTP requests)
is bounded too. All methods are thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Mapping, NamedTuple, Optional, Sequence

from .validation import EventCheck, RequestContext, render_event

__all__ = ["CollectorStore", "EventSummary", "StoredEvent"]

EXTRACTION_FAILED = "Error while extracting event(s) from collector payload and validating it/them."
VALIDATION_FAILED = "Error while validating the event."
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

    __slots__ = ("_check", "_describe", "ctx", "errors", "good", "params", "seq")

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
        self.seq = 0
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
            record.seq = 0
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


class CollectorStore:
    """Thread-safe bounded storage plus counters; ``wait_until`` blocks on new arrivals."""

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
        self._good: Deque[StoredEvent] = deque()
        self._bad: Deque[StoredEvent] = deque()
        self._event_ids: Deque[str] = deque(maxlen=max_events)
        self._payloads: Deque[Dict[str, Any]] = deque(maxlen=max_events)
        self._requests: Deque[Dict[str, Any]] = deque()
        self._request_bytes = 0
        self._seq = 0
        self.requests_received = 0
        self.events_received = 0
        self.events_dropped = 0
        self.good_received = 0
        self.bad_received = 0

    # -- writing ----------------------------------------------------------------------------

    def record_request(self, entry: Dict[str, Any]) -> None:
        """Append a request to the bounded request log and count it."""
        body = entry.get("body")
        size = len(body) if isinstance(body, (bytes, bytearray)) else 0
        with self._cond:
            self.requests_received += 1
            self._requests.append(entry)
            self._request_bytes += size
            while len(self._requests) > 1 and (
                len(self._requests) > self.max_requests
                or self._request_bytes > self.max_request_bytes
            ):
                old = self._requests.popleft().get("body")
                self._request_bytes -= len(old) if isinstance(old, (bytes, bytearray)) else 0
            self._cond.notify_all()

    def record_received(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Count received events (duplicates included) and log their ids and parameters."""
        # The parameter dicts are kept as they are (nothing mutates them; ``payloads()``
        # returns copies), and ids are collected before taking the lock.
        ids = [eid for eid in (params.get("eid") for params in events) if isinstance(eid, str)]
        with self._cond:
            self.events_received += len(events)
            self._payloads.extend(events)  # type: ignore[arg-type]
            self._event_ids.extend(ids)

    def store(self, events: List[StoredEvent]) -> None:
        """Store good events and bad rows, dropping the oldest when over the cap."""
        if not events:
            return
        with self._cond:
            for event in events:
                self._seq += 1
                event.seq = self._seq
                if event.good:
                    self._good.append(event)
                    self.good_received += 1
                else:
                    self._bad.append(event)
                    self.bad_received += 1
            good, bad = self._good, self._bad
            while len(good) + len(bad) > self.max_events:
                if bad and (not good or bad[0].seq < good[0].seq):
                    bad.popleft()
                else:
                    good.popleft()
                self.events_dropped += 1
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget every event, request and counter."""
        with self._cond:
            self._good.clear()
            self._bad.clear()
            self._event_ids.clear()
            self._payloads.clear()
            self._requests.clear()
            self._request_bytes = 0
            self.requests_received = self.events_received = self.events_dropped = 0
            self.good_received = self.bad_received = 0
            self._cond.notify_all()

    # -- reading ----------------------------------------------------------------------------

    def good(self) -> List[StoredEvent]:
        """Stored good events, oldest first."""
        with self._cond:
            return list(self._good)

    def bad(self) -> List[StoredEvent]:
        """Stored bad rows, oldest first."""
        with self._cond:
            return list(self._bad)

    def counts(self) -> Dict[str, int]:
        """``{"total", "good", "bad"}`` of what is stored now."""
        with self._cond:
            good, bad = len(self._good), len(self._bad)
        return {"total": good + bad, "good": good, "bad": bad}

    def event_ids(self) -> List[str]:
        """Every ``eid`` received, duplicates included, oldest first."""
        with self._cond:
            return list(self._event_ids)

    def payloads(self) -> List[Dict[str, Any]]:
        """The parameter dict of every event received, oldest first."""
        with self._cond:
            return [dict(p) for p in self._payloads]

    def requests(self) -> List[Dict[str, Any]]:
        """The logged tracking requests, oldest first."""
        with self._cond:
            return [dict(r) for r in self._requests]

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` (evaluated under the lock) is true or ``timeout`` passes."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
