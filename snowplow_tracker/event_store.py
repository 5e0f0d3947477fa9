"""Event stores: where an emitter keeps events until the collector has them.

:class:`EventStore` is the protocol (the four methods 1.1.0 emitters call).
:class:`InMemoryEventStore` is the default, bounded by ``buffer_capacity``.
:class:`SQLiteEventStore` keeps events in a file so they survive crashes and restarts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, List, Optional

from typing_extensions import Protocol

from snowplow_tracker._packing import as_dicts
from snowplow_tracker.typing import PayloadDict, PayloadDictList

DropCallback = Callable[[PayloadDictList, str], None]
"""Called with events a store had to drop, and why ("buffer_full", ...)."""

OVERFLOW_POLICIES = ("drop_newest", "drop_oldest")


class EventStore(Protocol):
    """The four calls an emitter makes on its store.

    ``get_events_batch`` hands events out for sending; the emitter then calls ``cleanup``
    with the same dicts: ``need_retry=False`` once they are delivered or given up, and
    ``need_retry=True`` to put them back for a later attempt.

    Optional extras that emitters use when a store has them:

    * ``supports_batch_limit = True`` (class attribute): ``get_events_batch(limit)`` accepts
      a maximum number of events, so emitters take one request's worth at a time.
    * ``pending() -> int``: events that ``get_events_batch`` could hand out now (used instead
      of ``size()`` for accounting, by stores whose ``size()`` includes events handed out).
    * ``on_drop`` attribute: when it is ``None``, the emitter sets it to its own handler so
      that the store's drops are counted and reach the emitter's ``on_drop``.
    * ``buffer_capacity`` or ``max_events`` (int): enables the emitter's ``"block"`` policy.

    Emitters catch and log exceptions raised by any of these methods: a failing
    ``add_event`` counts the event as dropped (reason ``"store_error"``), a failing
    ``cleanup(batch, True)`` reports the batch as dropped, a failing ``get_events_batch``
    sends nothing this time.
    """

    def add_event(self, payload: PayloadDict) -> bool:
        """Store one event; return False if it was dropped."""
        ...

    def get_events_batch(self) -> PayloadDictList:
        """Take the events to send now."""
        ...

    def cleanup(self, batch: PayloadDictList, need_retry: bool) -> None:
        """Finish events from ``get_events_batch``: forget them, or put them back to retry."""
        ...

    def size(self) -> int:
        """Number of events held."""
        ...


class InMemoryEventStore(EventStore):
    """A bounded in-memory buffer, safe to share between threads.

    Args:
        logger: Where to report dropped events (required, as in 1.1.0).
        buffer_capacity: Most events held at once (default 10,000).
        overflow: What happens when the buffer is full: ``"drop_newest"`` (default, as
            1.1.0) refuses the new event; ``"drop_oldest"`` evicts the oldest one to make room.
        on_drop: Called with the events dropped and the reason, outside the store's lock.

    Events put back with ``cleanup(batch, need_retry=True)`` go to the front of the buffer,
    so the oldest events are sent first. If that overfills the buffer, the overflow policy
    decides what goes: the newest events (``"drop_newest"``) or the oldest (``"drop_oldest"``).

    A POST emitter that created this store (or was given one whose ``on_drop`` it handles)
    stores each event as the JSON text of its dict, which takes less than half the memory;
    ``event_buffer``, ``get_events_batch()`` and ``on_drop`` still see dicts.

    Attributes:
        buffer_capacity: Most events held at once.
        logger: The logger drops are reported to.
        overflow: The overflow policy.
        on_drop: The drop callback, or ``None``.
    """

    #: Our stores accept ``get_events_batch(limit)``; emitters check this marker.
    supports_batch_limit = True

    def __init__(
        self,
        logger: logging.Logger,
        buffer_capacity: int = 10000,
        *,
        overflow: str = "drop_newest",
        on_drop: Optional[DropCallback] = None,
    ) -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")
        self._buffer: List[Any] = []
        self.buffer_capacity = buffer_capacity
        self.logger = logger
        self.overflow = overflow
        self.on_drop = on_drop
        self._lock = threading.Lock()

    @property
    def event_buffer(self) -> PayloadDictList:
        """The buffered events as dicts, oldest first (a new list; assigning replaces it)."""
        return as_dicts(self._buffer)

    @event_buffer.setter
    def event_buffer(self, events: PayloadDictList) -> None:
        with self._lock:
            self._buffer = list(events)

    def add_event(self, payload: PayloadDict) -> bool:
        """Append ``payload``; when full, apply the overflow policy."""
        with self._lock:
            buffer = self._buffer
            if len(buffer) < self.buffer_capacity:
                buffer.append(payload)
                return True
            evicted: Optional[Any] = None
            if self.overflow == "drop_newest" or not buffer:
                accepted = False
            else:
                evicted = buffer.pop(0)
                buffer.append(payload)
                accepted = True
        if accepted:
            self.logger.error("Event buffer is full: dropping the oldest event")
            self._report_drop([evicted] if evicted is not None else [], "buffer_full")
        else:
            self.logger.error("Event buffer is full: dropping the new event")
            self._report_drop([payload], "buffer_full")
        return accepted

    def get_events_batch(self, limit: Optional[int] = None) -> PayloadDictList:
        """Take up to ``limit`` events (all of them by default), oldest first."""
        return as_dicts(self._take(limit))

    def _take(self, limit: Optional[int]) -> List[Any]:
        """Take up to ``limit`` events as stored (dicts or encoded events), oldest first."""
        with self._lock:
            if limit is None or limit >= len(self._buffer):
                batch, self._buffer = self._buffer, []
            else:
                batch = self._buffer[:limit]
                del self._buffer[:limit]
            return batch

    def cleanup(self, batch: PayloadDictList, need_retry: bool) -> None:
        """Put ``batch`` back at the front when ``need_retry``; otherwise nothing to do."""
        if not need_retry or not batch:
            return
        evicted: List[Any] = []
        with self._lock:
            buffer = list(batch) + self._buffer
            excess = len(buffer) - self.buffer_capacity
            if excess > 0:
                if self.overflow == "drop_oldest":
                    evicted = buffer[:excess]
                    del buffer[:excess]
                else:
                    evicted = buffer[-excess:]
                    del buffer[-excess:]
            self._buffer = buffer
        if evicted:
            which = "oldest" if self.overflow == "drop_oldest" else "newest"
            self.logger.error(
                "Event buffer is full: dropping the %d %s events", len(evicted), which
            )
            self._report_drop(evicted, "buffer_full")

    def size(self) -> int:
        """Number of events in the buffer."""
        return len(self._buffer)

    def _buffer_capacity_reached(self) -> bool:
        return len(self._buffer) >= self.buffer_capacity

    def _clear_after_fork(self) -> None:
        """In a forked child: forget the parent's events (the parent sends them)."""
        self._lock = threading.Lock()
        self._buffer = []

    def _report_drop(self, events: List[Any], reason: str) -> None:
        if self.on_drop is None or not events:
            return
        try:
            self.on_drop(as_dicts(events), reason)
        except Exception:
            self.logger.exception("on_drop callback raised")


# Imported last: the durable store builds on the protocol above.
from snowplow_tracker._sqlite_store import SQLiteEventStore  # noqa: E402

__all__ = ["EventStore", "InMemoryEventStore", "SQLiteEventStore"]
