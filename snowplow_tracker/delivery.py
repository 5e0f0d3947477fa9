"""Delivery accounting: counters every emitter keeps, and the report a flush returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryStats:
    """A snapshot of an emitter's counters since it was created (or since ``fork()``).

    Attributes:
        accepted: Events that ``input()`` accepted into the event store.
        sent: Events the collector acknowledged with a 2xx.
        failed: Events given up after a failed attempt: a non-retried status code, the retry
            policy's attempt or time cap, or an event too large for any request.
        dropped: Events refused before any attempt: store full, emitter shut down, or a
            store error.
        retried: Failed attempts that were scheduled for another try (one per event and
            attempt).
        requests: HTTP requests made.
        pending: Events not yet acknowledged, failed or dropped: in the store or in flight.
    """

    accepted: int = 0
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0
    requests: int = 0
    pending: int = 0


@dataclass(frozen=True)
class DeliveryReport:
    """What happened during one ``force_flush()`` or ``shutdown()`` call.

    Attributes:
        sent: Events acknowledged during the call.
        failed: Events given up during the call.
        dropped: Events dropped during the call.
        pending: Events still waiting when the call returned (in the store, in flight or
            waiting for a retry).
        timed_out: True when the call returned because its timeout ran out.
    """

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    pending: int = 0
    timed_out: bool = False

    @property
    def complete(self) -> bool:
        """True when nothing was left pending."""
        return self.pending == 0


class Counters:
    """Thread-safe counters behind :class:`DeliveryStats`."""

    __slots__ = ("_lock", "accepted", "dropped", "failed", "requests", "retried", "sent")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.retried = 0
        self.requests = 0

    def add(
        self,
        *,
        sent: int = 0,
        failed: int = 0,
        dropped: int = 0,
        retried: int = 0,
        requests: int = 0,
    ) -> None:
        """Add to several counters at once.

        ``accepted`` is not among them: the emitter counts it while it stores the event,
        under the lock that guards that step, and a write here (even of ``+= 0``) under this
        lock could undo an increment made under that one.
        """
        with self._lock:
            self.sent += sent
            self.failed += failed
            self.dropped += dropped
            self.retried += retried
            self.requests += requests

    def snapshot(self, pending: int) -> DeliveryStats:
        """Freeze the counters into a :class:`DeliveryStats`."""
        with self._lock:
            return DeliveryStats(
                accepted=self.accepted,
                sent=self.sent,
                failed=self.failed,
                dropped=self.dropped,
                retried=self.retried,
                requests=self.requests,
                pending=pending,
            )
