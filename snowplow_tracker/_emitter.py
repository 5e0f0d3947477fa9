"""The synchronous ``Emitter`` and the parts every emitter shares.

The public names are imported from :mod:`snowplow_tracker.emitters`. Emitters buffer the
events a tracker produces and send them to a collector.

:class:`Emitter` sends in the caller's thread, as snowplow-tracker 1.1.0 does, but a tracking
call makes at most one request (bounded by the request timeout) and never sends while the
emitter is backing off after a failure. :class:`AsyncEmitter` never does I/O in the caller's
thread: a sender thread, started on first use (and again after ``fork()``), takes events from
the store and sends them with at most ``thread_count`` requests in flight.

Both keep 1.1.0's seams: ``input`` -> ``flush`` -> ``send_events`` -> ``http_post`` /
``http_get``, the ``on_success(list)`` and ``on_failure(count, list)`` callbacks, and the
``timer`` / ``retry_timer`` objects. Both are drained at interpreter exit within a deadline,
count what they sent, failed and dropped (``stats()``), and can be flushed with a timeout
(``force_flush``) or shut down (``shutdown``). See ``docs/delivery.md`` for the guarantees.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

import requests
from requests.adapters import HTTPAdapter

from snowplow_tracker import _lifecycle
from snowplow_tracker._packing import (
    PAYLOAD_DATA_SCHEMA,
    as_dicts,
    encode_event,
    is_oversized,
    post_body,
    split_batches,
    with_stm,
)
from snowplow_tracker._transport import Transport
from snowplow_tracker._transport import usable_for as transport_usable_for
from snowplow_tracker.contracts import one_of
from snowplow_tracker.delivery import Counters, DeliveryReport, DeliveryStats
from snowplow_tracker.event_store import EventStore, InMemoryEventStore
from snowplow_tracker.retry import NETWORK_ERROR, RETRY_AFTER_CODES, RetryPolicy
from snowplow_tracker.typing import (
    EmitterProtocol,
    FailureCallback,
    HttpProtocol,
    Method,
    PayloadDict,
    PayloadDictList,
    SuccessCallback,
)

logger = logging.getLogger("snowplow_tracker.emitters")

DEFAULT_MAX_LENGTH = 10
PROTOCOLS = {"http", "https"}
METHODS = {"get", "post"}
DEFAULT_REQUEST_TIMEOUT: Tuple[float, float] = (5.0, 10.0)
"""Used when ``request_timeout`` is None: (connect, read) seconds. 1.1.0 had no timeout."""
DEFAULT_EXIT_TIMEOUT = 2.0
"""Default deadline, in seconds, for sending what is left when the interpreter exits."""
DEFAULT_SYNC_FLUSH_TIMEOUT = 60.0
"""Upper bound, in seconds, on a ``sync_flush()`` call."""
DEFAULT_BUFFER_CAPACITY = 10000
OVERFLOW_POLICIES = ("drop_newest", "drop_oldest", "block")
BACKLOG_REQUEST_EVENTS = 1000
"""Most events in one POST while more than ``batch_size`` events wait to be sent."""
BACKLOG_REQUEST_BYTES = 512 * 1024
"""Most bytes in such a POST body (``byte_limit`` when smaller): half of the 1 MiB above
which a Snowplow collector turns a whole payload into a size violation (a Kinesis sink
stores up to 1,000,000 bytes as one record; 413 comes only above 2 MiB), and of the 1 MB
an nginx in front of it accepts by default. Fewer, larger requests mean fewer turns of the
sender thread, each of which holds up a tracking call: p99 of a self-describing tracking
call while sending 41.1 us with 256 KiB, 36.7 us with 512 KiB (medians of 20 runs)."""

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "METHODS",
    "PAYLOAD_DATA_SCHEMA",
    "PROTOCOLS",
    "Emitter",
    "FlushTimer",
    "Requester",
    "logger",
]

_POST_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
# requests' own functions, unless a test had already replaced them when this module loaded
# (then every request goes through the replacement, as in 1.1.0).
_ORIGINAL_REQUESTS_POST = (
    requests.post if getattr(requests.post, "__module__", None) == "requests.api" else None
)
_ORIGINAL_REQUESTS_GET = (
    requests.get if getattr(requests.get, "__module__", None) == "requests.api" else None
)
#: Seconds between two ERROR lines about a failing event store (the rest go to DEBUG).
_STORE_ERROR_LOG_INTERVAL = 10.0

RequestTimeout = Union[float, Tuple[float, float]]
DropCallback = Callable[[PayloadDictList, str], None]
_Drops = List[Tuple[PayloadDictList, str]]


class Requester:
    """The two request callables an emitter sends with (``post`` and ``get``)."""

    def __init__(self, post: Callable[..., Any], get: Callable[..., Any]) -> None:
        self.post = post
        self.get = get


class FlushTimer:
    """Calls ``emitter.flush()`` after a delay, once or repeatedly.

    One daemon thread serves the timer while it is active (1.1.0 started a new thread on
    every tick). A one-shot timer stops being active just before it calls ``flush()``.

    Args:
        emitter: The emitter to flush.
        repeating: Flush every ``timeout`` seconds until cancelled, instead of once.
    """

    def __init__(self, emitter: Any, repeating: bool) -> None:
        self.emitter = emitter
        self.repeating = repeating
        self.timer: Optional[threading.Thread] = None
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._due = 0.0

    def start(self, timeout: float) -> bool:
        """Start the timer; return False (and change nothing) if it is already active."""
        with self.lock:
            if self.is_active():
                return False
            return self._schedule_timer(timeout)

    def cancel(self) -> None:
        """Stop the timer; a flush already running finishes."""
        with self.lock:
            self._stop.set()
            self.timer = None

    def is_active(self) -> bool:
        """True while the timer is waiting to fire."""
        thread = self.timer
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    def remaining(self) -> float:
        """Seconds until the timer fires next; 0 when it is not active."""
        if not self.is_active():
            return 0.0
        return max(0.0, self._due - time.monotonic())

    def _schedule_timer(self, timeout: float) -> bool:
        self._stop = threading.Event()
        self._due = time.monotonic() + timeout
        thread = threading.Thread(
            target=self._run,
            args=(timeout, self._stop),
            name="snowplow-flush-timer" if self.repeating else "snowplow-retry-timer",
            daemon=True,
        )
        self.timer = thread
        try:
            thread.start()
        except RuntimeError:  # the interpreter is shutting down
            self.timer = None
            logger.debug("Could not start a timer thread", exc_info=True)
            return False
        return True

    def _run(self, timeout: float, stop: threading.Event) -> None:
        while not stop.wait(timeout):
            if self.repeating:
                self._due = time.monotonic() + timeout
            else:
                with self.lock:
                    if self.timer is threading.current_thread():
                        self.timer = None
            self._fire(timeout)
            if not self.repeating:
                return

    def _fire(self, timeout: float) -> None:
        try:
            self.emitter.flush()
        except Exception:
            logger.exception("Timed flush failed")


def _attempt_key(event: Any) -> Any:
    """What identifies an event across attempts: its text when encoded, else its ``eid``."""
    if type(event) is str:
        return event
    return event.get("eid") or id(event)


class _SendState(threading.local):
    """Per-thread state of the send in progress in this thread."""

    #: No request is started after this time (monotonic) and timeouts are cut to fit it.
    deadline: Optional[float] = None
    #: The last request's timeout was cut short to fit ``deadline``.
    clamped: bool = False
    #: Seconds the collector asked to wait (``Retry-After``) in this send.
    retry_after: Optional[float] = None
    #: A retryable failure happened: the drain in progress stops.
    retry_scheduled: bool = False
    #: The flush was triggered by a tracking call: send one request's worth only.
    single: bool = False
    #: While set, drop reports are collected here and delivered once locks are released.
    deferred: Optional[_Drops] = None
    #: Events of the ``_send_taken`` in progress (None outside one), and how many of them
    #: already went back to the store (and stopped counting as in flight).
    taken: Optional[int] = None
    released: int = 0
    #: Events this thread is sending (counted in ``_inflight``): a flush called from a
    #: callback must not wait for them.
    holding: int = 0
    #: This thread is one of an ``AsyncEmitter``'s sender threads.
    sender: bool = False
    #: The ``stm`` of this thread's last request with encoded events.
    stm: str = ""


class Emitter(EmitterProtocol):
    """Buffers events and sends them to a collector from the calling thread.

    Args:
        endpoint: Collector host, optionally with a scheme (``http://`` or ``https://``
            overrides ``protocol``), port and path prefix.
        protocol: ``"https"`` (default) or ``"http"``.
        port: Collector port; replaces any port in ``endpoint``.
        method: ``"post"`` (default; batches events) or ``"get"`` (one request per event).
        batch_size: Events buffered before a send, and most events per request (a backlog
            of more is packed up to 1,000 events and 512 KiB per request). Default 10
            for POST, 1 for GET; never more than ``buffer_capacity``.
        on_success: Called with the list of events the collector accepted.
        on_failure: Called with the number of events accepted and the list of events that
            were not, after each send that had failures.
        byte_limit: Send once the buffered events reach this size (1.1.0's measure: the
            length of each event dict's text); also the most bytes in one POST body.
        request_timeout: Seconds, or a (connect, read) pair, for each request. Default
            (5, 10); 1.1.0 waited forever.
        max_retry_delay_seconds: Cap on the backoff between retries (default 60).
        buffer_capacity: Most events held in the default in-memory store (default 10,000).
        custom_retry_codes: ``{status: bool}`` overrides of which codes are retried.
        event_store: Where events wait (default: an ``InMemoryEventStore``).
        session: A ``requests.Session`` to send with (default: one owned by the emitter, so
            connections are reused).
        retry_policy: A :class:`~snowplow_tracker.retry.RetryPolicy` replacing the one built
            from ``max_retry_delay_seconds``; ``custom_retry_codes`` still take precedence.
        overflow_policy: When the store is full: ``"drop_newest"`` (default, as 1.1.0),
            ``"drop_oldest"``, or ``"block"`` (the tracking call waits up to
            ``block_timeout`` seconds for room, then drops the new event).
        block_timeout: Longest wait, in seconds, of the ``"block"`` policy.
        on_drop: Called with events that were dropped before any attempt, and the reason
            (``"buffer_full"``, ``"shutdown"``, ``"store_error"``, or the reason given by a
            store such as ``SQLiteEventStore``).
        exit_timeout: Seconds the exit drain may spend sending what is left at interpreter
            exit (default 2); 0 disables the drain.

    Attributes:
        endpoint: The full collector URL requests go to (subclasses overriding
            ``http_post``/``http_get`` send there).
        method: ``"post"`` or ``"get"``.
        batch_size: Events per flush and most events per request outside a backlog.
        byte_limit: The byte threshold, or ``None``.
        bytes_queued: Size of the buffered events in 1.1.0's measure, or ``None`` without
            a ``byte_limit``.
        event_store: The store events wait in.
        request_timeout: The timeout passed to every request.
        on_success: The success callback, or ``None``.
        on_failure: The failure callback, or ``None``.
        retry_policy: The :class:`~snowplow_tracker.retry.RetryPolicy` in force.
        custom_retry_codes: The dict given (read at every retry decision).
        max_retry_delay_seconds: Cap on the backoff between retries.
        retry_delay: The current backoff delay, in seconds (0 after a success).
        timer: The periodic flush timer (see :meth:`set_flush_timer`).
        retry_timer: The one-shot timer of the retry backoff; while it is active, tracking
            calls do not send.
        request_method: The pair of callables requests are sent with.
        lock: The emitter's re-entrant lock.
    """

    def __init__(
        self,
        endpoint: str,
        protocol: HttpProtocol = "https",
        port: Optional[int] = None,
        method: Method = "post",
        batch_size: Optional[int] = None,
        on_success: Optional[SuccessCallback] = None,
        on_failure: Optional[FailureCallback] = None,
        byte_limit: Optional[int] = None,
        request_timeout: Optional[RequestTimeout] = None,
        max_retry_delay_seconds: int = 60,
        buffer_capacity: Optional[int] = None,
        custom_retry_codes: Optional[Dict[int, bool]] = None,
        event_store: Optional[EventStore] = None,
        session: Optional[requests.Session] = None,
        *,
        retry_policy: Optional[RetryPolicy] = None,
        overflow_policy: str = "drop_newest",
        block_timeout: float = 1.0,
        on_drop: Optional[DropCallback] = None,
        exit_timeout: float = DEFAULT_EXIT_TIMEOUT,
    ) -> None:
        one_of(protocol, PROTOCOLS, name="protocol")
        one_of(method, METHODS, name="method")
        if overflow_policy not in OVERFLOW_POLICIES:
            raise ValueError(
                f"overflow_policy must be one of {OVERFLOW_POLICIES}, not {overflow_policy!r}"
            )
        self.endpoint = Emitter.as_collector_uri(endpoint, protocol, port, method)
        self.method = method

        if batch_size is None:
            batch_size = 1 if method == "get" else DEFAULT_MAX_LENGTH
        if buffer_capacity is not None and buffer_capacity < batch_size:
            batch_size = buffer_capacity
        self.batch_size = batch_size
        # Most events in a packed backlog request; lowered when the collector answers 413.
        self._packed_events = BACKLOG_REQUEST_EVENTS
        self.byte_limit = byte_limit
        self.bytes_queued: Optional[int] = None if byte_limit is None else 0

        self.on_success = on_success
        self.on_failure = on_failure
        self.on_drop = on_drop
        self.overflow_policy = overflow_policy
        self.block_timeout = block_timeout
        self.exit_timeout = exit_timeout

        if event_store is None:
            event_store = InMemoryEventStore(
                logger,
                DEFAULT_BUFFER_CAPACITY if buffer_capacity is None else buffer_capacity,
                overflow="drop_oldest" if overflow_policy == "drop_oldest" else "drop_newest",
            )
        # Stores that report their own drops (ours do) report them to this emitter, unless
        # the user gave the store a callback of its own.
        self._store_reports_drops = False
        if getattr(event_store, "on_drop", False) is None:
            try:
                event_store.on_drop = self._handle_drop  # type: ignore[attr-defined]
                self._store_reports_drops = True
            except AttributeError:
                pass
        self.event_store = event_store
        # Events are kept encoded (see _packing) in our own in-memory store when nothing
        # else needs them as dicts: POST, drops reported through this emitter, and the
        # timestamp seam not overridden. Identity-checked at every use, so replacing
        # ``event_store`` later simply turns it off.
        self._compact_store: Optional[InMemoryEventStore] = None
        if (
            method == "post"
            and type(event_store) is InMemoryEventStore
            and self._store_reports_drops
            and type(self).attach_sent_timestamp is Emitter.attach_sent_timestamp
        ):
            self._compact_store = event_store
        # input() may inline the store call and the limit check when neither is overridden.
        self._plain_input = type(self).reached_limit is Emitter.reached_limit

        self.request_timeout: RequestTimeout = (
            DEFAULT_REQUEST_TIMEOUT if request_timeout is None else request_timeout
        )
        self.max_retry_delay_seconds = max_retry_delay_seconds
        self.custom_retry_codes: Dict[int, bool] = (
            {} if custom_retry_codes is None else custom_retry_codes
        )
        self.retry_policy = (
            retry_policy if retry_policy is not None else RetryPolicy(max_retry_delay_seconds)
        )
        self.retry_delay: float = 0

        self.lock = threading.RLock()
        self.timer = FlushTimer(emitter=self, repeating=True)
        self.retry_timer = FlushTimer(emitter=self, repeating=False)

        self._session = session
        self._owns_session = session is None
        self._transport: Optional[Transport] = None
        self._transport_url = ""
        if session is not None:
            self.request_method = Requester(post=session.post, get=session.get)
        else:
            self.request_method = Requester(post=self._default_post, get=self._default_get)

        self._counters = Counters()
        self._attempts: Dict[Any, Tuple[int, float]] = {}
        # _take_lock makes "taken from the store" and "counted in flight" one step, so
        # _pending() never misses events between the two. Tracking calls never take it.
        self._take_lock = threading.Lock()
        self._landed = threading.Condition(self._take_lock)  # notified when _inflight drops
        self._inflight = 0
        self._not_before = 0.0  # monotonic time before which Retry-After forbids requests
        self._state = _SendState()
        self._space = threading.Condition(threading.Lock())
        self._shut_down = False
        self._warned_shut_down = False
        self._exiting = False
        self._timer_interval: Optional[float] = None
        self._store_log_at = -math.inf
        self._pinned = False  # held by _lifecycle while the store has events
        self._pid = os.getpid()
        _lifecycle.register(self)
        if self._store_pending(0) > 0:
            # Events left in a durable store by an earlier run: send them now.
            _lifecycle.pin(self)
            self._send_leftovers()

    # ------------------------------------------------------------------ endpoint

    @staticmethod
    def as_collector_uri(
        endpoint: str,
        protocol: HttpProtocol = "https",
        port: Optional[int] = None,
        method: Method = "post",
    ) -> str:
        """Build the collector URL (path ``/i`` for GET, the tp2 path for POST).

        Raises:
            ValueError: if ``endpoint`` is empty.
        """
        if not endpoint:
            raise ValueError("No endpoint provided.")
        endpoint = endpoint.rstrip("/")
        scheme, sep, rest = endpoint.partition("://")
        if sep and scheme.lower() in PROTOCOLS:
            protocol = scheme.lower()  # type: ignore[assignment]
            endpoint = rest
        path = "/i" if method == "get" else "/com.snowplowanalytics.snowplow/tp2"
        if port is not None:
            host, slash, prefix = endpoint.partition("/")
            if host.startswith("["):  # IPv6 literal
                host = host[: host.index("]") + 1] if "]" in host else host
            elif ":" in host:
                host = host.rsplit(":", 1)[0]
            endpoint = f"{host}:{port}{slash}{prefix}"
        return f"{protocol}://{endpoint}{path}"

    # ------------------------------------------------------------------ input

    def input(self, payload: PayloadDict) -> None:
        """Buffer one event (a copy of ``payload``) and flush once a limit is reached.

        Never raises because of the store or the network: an event that cannot be stored is
        counted as dropped and reported to ``on_drop``.
        """
        if self._pid != os.getpid():
            _lifecycle.after_fork_without_hooks(self)
        if self._shut_down:
            self._drop_after_shutdown(dict(payload))
            return
        store = self.event_store
        event: Any
        if self.method != "post":
            event = dict(payload)
        elif store is self._compact_store and payload and "stm" not in payload:
            try:
                event = encode_event(payload)
            except (TypeError, ValueError):  # a key JSON cannot write: keep the dict
                event = dict(zip(payload, map(str, payload.values())))
            if self._plain_input and self.byte_limit is None and self.overflow_policy != "block":
                # The common case, inlined: our store, room in it, 1.1.0's limit check.
                with store._lock:
                    buffer = store._buffer
                    count = len(buffer)
                    if count < store.buffer_capacity:
                        buffer.append(event)
                        self._counters.accepted += 1  # only ever added to under this lock
                        count += 1
                    else:
                        count = -1
                if count > 0:
                    if not self._pinned:
                        _lifecycle.pin(self)
                    if count >= self.batch_size:
                        self._flush_after_input()
                    return
        else:
            event = dict(zip(payload, map(str, payload.values())))
        if self.overflow_policy == "block":
            self._wait_for_space()
        try:
            added = store.add_event(event)
            refused = "store_refused"
        except Exception:
            self._store_failed("add_event()")
            added, refused = False, "store_error"
        if self.bytes_queued is not None:
            with self.lock:
                self.bytes_queued += len(str(payload))
        if added:
            self._count_accepted()
            if not self._pinned:
                _lifecycle.pin(self)
        elif refused == "store_error" or not self._store_reports_drops:
            self._handle_drop([event], refused)
        try:
            flush_now = self.reached_limit()
        except Exception:
            self._store_failed("size()")
            flush_now = True
        if flush_now:
            self._flush_after_input()

    def _count_accepted(self) -> None:
        """Count one accepted event, under the one lock ``accepted`` is ever changed under.

        That is the compact store's lock when there is one (the inlined path of ``input()``
        counts while it appends), else the emitter's.
        """
        compact = self._compact_store
        with compact._lock if compact is not None else self.lock:
            self._counters.accepted += 1

    def _flush_after_input(self) -> None:
        """The flush a tracking call triggers, with any exception logged, never raised."""
        try:
            self._flush_for_input()
        except Exception:  # only an overridden flush() can raise here
            logger.exception("flush() raised during a tracking call")

    def _drop_after_shutdown(self, event: PayloadDict) -> None:
        level = logging.DEBUG if self._warned_shut_down else logging.WARNING
        self._warned_shut_down = True
        logger.log(level, "Emitter is shut down: dropping an event")
        self._handle_drop([event], "shutdown")

    def reached_limit(self) -> bool:
        """True once the buffer holds ``batch_size`` events or ``byte_limit`` bytes."""
        if self.byte_limit is None:
            return self.event_store.size() >= self.batch_size
        return (
            self.event_store.size() >= self.batch_size
            or (self.bytes_queued or 0) >= self.byte_limit
        )

    def _flush_for_input(self) -> None:
        """The flush a tracking call triggers: ``flush()``, limited to one request's worth."""
        state = self._state
        if state.single:
            self.flush()
            return
        state.single = True
        try:
            self.flush()
        finally:
            state.single = False

    def _send_leftovers(self) -> None:
        """Send what the store held at construction, without blocking the constructor."""
        thread = threading.Thread(target=self._flush_quietly, name="snowplow-startup", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            logger.debug("Could not start the startup flush", exc_info=True)

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("Startup flush failed")

    def _capacity(self) -> Optional[int]:
        store = self.event_store
        for name in ("buffer_capacity", "max_events"):
            value = getattr(store, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    def _wait_for_space(self) -> None:
        """The ``"block"`` policy: wait up to ``block_timeout`` while the store is full."""
        capacity = self._capacity()
        if capacity is None or not self._store_full(capacity):
            return
        self._flush_for_input()
        deadline = time.monotonic() + self.block_timeout
        with self._space:
            while self._store_full(capacity):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                # Polls too: another process sharing a durable store may free the space.
                self._space.wait(min(remaining, 0.1))

    def _store_full(self, capacity: int) -> bool:
        try:
            return self.event_store.size() >= capacity
        except Exception:
            self._store_failed("size()")
            return False

    def _notify_space(self) -> None:
        with self._space:
            self._space.notify_all()

    # ------------------------------------------------------------------ flushing

    def flush(self) -> None:
        """Send the buffered events now, in this thread, unless a retry backoff is running.

        Called by a tracking call, it sends one request's worth of events; called directly
        or by a timer, it sends what the store held when it started, stopping at the first
        retryable failure.
        """
        if self._shut_down or self.retry_timer.is_active():
            return
        state = self._state
        if state.single:
            self._drain(state.deadline, single=True)
        else:
            self._drain(state.deadline, target=self._store_pending(None))

    def sync_flush(self) -> None:
        """Send every buffered event now, in this thread, even during a retry backoff.

        Each event gets one attempt; events that fail are kept for a later retry. Returns
        within ``DEFAULT_SYNC_FLUSH_TIMEOUT`` seconds at most, and at once while the
        collector's ``Retry-After`` forbids sending.
        """
        self._check_fork()
        logger.debug("Starting synchronous flush")
        if self._shut_down:
            return
        deadline = time.monotonic() + DEFAULT_SYNC_FLUSH_TIMEOUT
        self._drain(deadline, target=self._store_pending(None))
        self._wait_for_landing(deadline)

    def async_flush(self) -> None:
        """Does nothing; exists for the ``EmitterProtocol``."""

    def force_flush(self, timeout: float = 5.0) -> DeliveryReport:
        """Send everything buffered now, waiting at most ``timeout`` seconds.

        Every buffered event gets one attempt (a retry backoff in progress is skipped, a
        ``Retry-After`` wait that ends before the timeout is honoured); a retryable failure
        stops the flush and keeps the rest for later.

        Returns:
            What was sent, failed and dropped during the call, and what is still pending.
        """
        self._check_fork()
        before = self._counters.snapshot(0)
        deadline = time.monotonic() + max(0.0, timeout)
        if not self._shut_down:
            self._drain(deadline, target=self._store_pending(None), wait_retry_after=True)
            self._wait_for_landing(deadline)
        return self._report_since(before, deadline)

    def _wait_for_landing(self, deadline: float) -> None:
        """Wait until no event is in flight in another thread (or ``deadline``)."""
        own = self._state.holding  # a callback of this thread's send is flushing
        with self._landed:
            while self._inflight > own:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._landed.wait(remaining)

    def shutdown(self, timeout: float = 5.0) -> DeliveryReport:
        """Flush (as :meth:`force_flush`) and stop: later events are dropped and counted.

        With ``timeout <= 0`` nothing more is sent: buffered events stay in the store
        (lost with an in-memory store, kept with a durable one) and count as pending.

        Returns:
            The report of the final flush.
        """
        self._check_fork()
        if self._shut_down:
            return DeliveryReport(pending=self._pending())
        if timeout > 0:
            report = self.force_flush(timeout)
        else:
            pending = self._pending()
            report = DeliveryReport(pending=pending, timed_out=pending > 0)
        self._shut_down = True
        self.cancel_flush_timer()
        self._cancel_retry_timer()
        self._stop_sender()
        if self._inflight == 0:
            self._close()
        _lifecycle.unregister(self)
        return report

    def stats(self) -> DeliveryStats:
        """Counters since creation: accepted, sent, failed, dropped, retried, requests, pending."""
        return self._counters.snapshot(self._pending())

    def _stop_sender(self) -> None:
        """Stop background senders (none here; ``AsyncEmitter`` has some)."""

    # ------------------------------------------------------------------ accounting

    def _pending(self) -> int:
        """Events in the store (not handed out) plus events in flight."""
        with self._take_lock:
            return self._store_pending(0) + self._inflight

    def _store_pending(self, on_error: Optional[int]) -> int:
        """Events the store can hand out: ``pending()`` if it has one, else ``size()``.

        ``on_error`` is returned if the store raises (None: "unknown, as many as you like").
        """
        store = self.event_store
        try:
            pending = getattr(store, "pending", None)
            return int(pending() if callable(pending) else store.size())
        except Exception:
            self._store_failed("size()")
            return (1 << 62) if on_error is None else on_error

    def _report_since(self, before: DeliveryStats, deadline: float) -> DeliveryReport:
        after = self._counters.snapshot(self._pending())
        return DeliveryReport(
            sent=after.sent - before.sent,
            failed=after.failed - before.failed,
            dropped=after.dropped - before.dropped,
            pending=after.pending,
            timed_out=after.pending > 0 and time.monotonic() >= deadline,
        )

    def _take_size(self) -> int:
        """Events to take for the next request: ``batch_size``, or while a backlog waits
        (more than that in the store), up to ``BACKLOG_REQUEST_EVENTS``."""
        size = max(1, self.batch_size)
        if self.method != "post":
            return size
        compact = self._compact_store
        if compact is not None and self.event_store is compact:
            waiting = len(compact._buffer)
        else:
            try:  # size(), not pending(): O(1) in SQLiteEventStore; taking fewer is harmless
                waiting = int(self.event_store.size())
            except Exception:  # the take that follows reports store errors
                waiting = 0
        most, _ = self._request_limits(waiting)  # the packing rule lives there
        return size if most == size else min(waiting, most)

    def _request_limits(self, count: int) -> Tuple[int, Optional[int]]:
        """(most events, most bytes) per POST when ``count`` events are sent at once.

        ``batch_size`` and ``byte_limit``; when more than ``batch_size`` are sent together
        (a backlog), requests are packed up to ``BACKLOG_REQUEST_EVENTS`` events and
        ``BACKLOG_REQUEST_BYTES`` bytes instead: fewer, larger requests drain a backlog
        with fewer round trips, and a sender thread that gets the GIL rarely (a tracking
        loop that never blocks) still keeps up. After a 413 answer the packed size stays
        at or below half the refused request's, for the life of the emitter.
        """
        size = max(1, self.batch_size)
        packed = self._packed_events
        if count <= size or size >= packed:
            return size, self.byte_limit
        limit = self.byte_limit
        packed_bytes = BACKLOG_REQUEST_BYTES if limit is None else min(limit, BACKLOG_REQUEST_BYTES)
        return packed, packed_bytes

    def _take_events(self, limit: Optional[int] = None) -> PayloadDictList:
        """Take up to ``limit`` events from the store and count them in flight."""
        store = self.event_store
        state = self._state
        deferred: _Drops = []
        outer, state.deferred = state.deferred, deferred
        try:
            with self._take_lock:
                try:
                    if store is self._compact_store:
                        events = self._compact_store._take(limit)
                    elif limit is not None and getattr(store, "supports_batch_limit", False):
                        events = store.get_events_batch(limit)  # type: ignore[call-arg]
                    else:
                        events = store.get_events_batch()
                    if not isinstance(events, list):
                        events = list(events or ())
                except Exception:
                    self._store_failed("get_events_batch()")
                    events = []
                self._inflight += len(events)
        finally:
            state.deferred = outer
        if self.bytes_queued is not None:
            self.bytes_queued = 0
        for dropped, reason in deferred:
            self._report_drop(dropped, reason)
        if events and self.overflow_policy == "block":
            self._notify_space()
        return events

    def _send_taken(self, events: PayloadDictList) -> None:
        """Send events taken from the store through ``send_events``, keeping the accounting."""
        state = self._state
        outer = (state.taken, state.released)
        state.taken, state.released = len(events), 0
        state.holding += len(events)
        send = self.send_events
        if getattr(send, "__func__", None) is not Emitter.send_events:
            events = as_dicts(events)  # an overridden send path sees dicts, as in 1.1.0
        try:
            send(events)
        except Exception:
            # Only an overridden send_events gets here: keep the events rather than lose them.
            logger.exception("send_events raised; keeping %d events for a retry", len(events))
            try:
                self._retry_failed_events(events)
            except Exception:
                logger.exception("Could not keep the events for a retry")
        finally:
            left = len(events) - state.released
            state.holding -= left
            state.taken, state.released = outer
            with self._take_lock:
                self._inflight -= left
                idle = self._inflight == 0
                self._landed.notify_all()
            if self.overflow_policy == "block":
                self._notify_space()
            if idle and self._pinned:
                _lifecycle.unpin_if_idle(self, self._is_idle)

    def _is_idle(self) -> bool:
        """True when this emitter holds no event (none stored, none in flight)."""
        return self._inflight == 0 and self.event_store.size() == 0

    def _drain(
        self,
        deadline: Optional[float],
        *,
        target: Optional[int] = None,
        single: bool = False,
        wait_retry_after: bool = False,
    ) -> None:
        """Send from this thread until the store is empty, ``target`` events were taken,
        a retryable failure, or ``deadline``. ``single``: one request's worth only."""
        state = self._state
        saved = (state.deadline, state.retry_scheduled)
        state.deadline = deadline
        state.retry_scheduled = False
        taken = 0
        try:
            while not state.retry_scheduled:
                if target is not None and taken >= target:
                    return
                if not self._may_send(deadline, wait_retry_after):
                    return
                events = self._take_events(self._take_size())
                if not events:
                    return
                taken += len(events)
                self._send_taken(events)
                if single:
                    return
        finally:
            state.deadline, state.retry_scheduled = saved

    def _may_send(self, deadline: Optional[float], wait_retry_after: bool) -> bool:
        """False once ``deadline`` passed, or while ``Retry-After`` forbids requests (waits
        for it instead when ``wait_retry_after`` and it ends before ``deadline``)."""
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return False
        wait = self._not_before - now
        if wait <= 0:
            return True
        if not wait_retry_after or deadline is None or now + wait >= deadline:
            if not (self._shut_down or self._exiting or self.retry_timer.is_active()):
                self._set_retry_timer(wait)  # someone must send once the window is over
            return False
        time.sleep(wait)
        return True

    def _deadline_passed(self) -> bool:
        deadline = self._state.deadline
        return deadline is not None and time.monotonic() >= deadline

    # ------------------------------------------------------------------ sending

    def send_events(self, evts: PayloadDictList) -> None:
        """Send ``evts`` in requests of at most ``batch_size`` events (and ``byte_limit`` bytes).

        Calls ``on_success`` with the accepted events and ``on_failure`` with the rest; puts
        retryable failures back in the store and starts the retry backoff. A retryable
        failure stops the send: later requests are kept for the retry without being tried.
        A 413 answer splits the request in two; an event too large for any request is sent
        alone once, then given up.
        """
        if not evts:
            logger.debug("Skipping flush since the buffer is empty")
            return
        state = self._state
        state.retry_after = None
        success: PayloadDictList = []
        failure: PayloadDictList = []
        retry: PayloadDictList = []
        give_up: PayloadDictList = []
        unsent: PayloadDictList = []
        last_status = 0

        if self.method == "post":
            max_count, max_bytes = self._request_limits(len(evts))
            batches: Deque[PayloadDictList] = collections.deque(
                split_batches(evts, max_count, max_bytes)
            )
        else:
            batches = collections.deque([event] for event in evts)
        while batches:
            batch = batches.popleft()
            if retry or self._stop_sending():
                unsent.extend(batch)
                continue
            status = self._attempt(batch)
            if self._compact_store is not None and (
                self.on_success is not None or self.on_failure is not None
            ):
                stm = state.stm  # callbacks get the dicts as sent, as in 1.1.0
                batch = [with_stm(event, stm) for event in batch]
            if status is None:  # the batch cannot be encoded: sending it again cannot help
                failure.extend(batch)
                give_up.extend(batch)
                continue
            last_status = status
            if self.is_good_status_code(status):
                success.extend(batch)
            elif status == NETWORK_ERROR and state.clamped and self._deadline_passed():
                unsent.extend(batch)  # cut short by the caller's deadline: still pending
            elif status == 413 and len(batch) > 1:
                middle = len(batch) // 2
                self._packed_events = min(self._packed_events, max(1, self.batch_size, middle))
                batches.appendleft(batch[middle:])
                batches.appendleft(batch[:middle])
            else:
                failure.extend(batch)
                if len(batch) == 1 and (status == 413 or is_oversized(batch[0], self.byte_limit)):
                    give_up.extend(batch)
                elif self._should_retry(status):
                    retry.extend(batch)
                else:
                    give_up.extend(batch)

        backoff = bool(retry)
        if retry:
            retry, exhausted = self._apply_retry_caps(retry)
            give_up.extend(exhausted)
        if failure:
            logger.warning(
                "%d of %d events were not accepted by the collector (last status %d)",
                len(failure),
                len(failure) + len(success),
                last_status,
            )
        self._run_callbacks(success, failure)
        finished = success + give_up
        if finished:
            self._store_cleanup(finished, False)
            self._forget_attempts(finished)
        self._counters.add(sent=len(success), failed=len(give_up), retried=len(retry))
        if backoff:
            self._retry_failed_events(retry + unsent)
        else:
            if unsent:
                self._return_to_store(unsent)
            if success:
                self._reset_retry_delay()

    def _attempt(self, batch: PayloadDictList) -> Optional[int]:
        """One request for ``batch``: its status, -1 without a response, None if unsendable."""
        stm = self._stamp(batch)
        self._state.clamped = False
        if self.method == "post":
            try:
                body = post_body(batch, stm)
            except (TypeError, ValueError) as error:
                logger.error("Giving up %d events that cannot be encoded: %s", len(batch), error)
                return None
            status = self._call(self.http_post, body)
        else:
            status = self._call(self.http_get, batch[0])
        self._counters.add(requests=1)
        return status

    def _call(self, send: Callable[[Any], int], argument: Any) -> int:
        try:
            return int(send(argument))
        except Exception as error:
            logger.warning(
                "Sending a request raised %s; treating it as a network error",
                type(error).__name__,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            return NETWORK_ERROR

    def _stop_sending(self) -> bool:
        """Whether the send in progress must stop before its next request."""
        return self._shut_down or self._deadline_passed() or time.monotonic() < self._not_before

    def _run_callbacks(self, success: PayloadDictList, failure: PayloadDictList) -> None:
        if success and self.on_success is not None:
            try:
                self.on_success(success)
            except Exception:
                logger.exception("on_success callback raised")
        if failure and self.on_failure is not None:
            try:
                self.on_failure(len(success), failure)
            except Exception:
                logger.exception("on_failure callback raised")

    def _apply_retry_caps(self, events: PayloadDictList) -> Tuple[PayloadDictList, PayloadDictList]:
        """Split events that failed into those to retry and those the policy gives up."""
        policy = self.retry_policy
        if policy.max_attempts is None and policy.max_retry_time is None:
            return events, []
        now = time.monotonic()
        keep: PayloadDictList = []
        drop: PayloadDictList = []
        with self.lock:
            for event in events:
                key = _attempt_key(event)
                attempts, first = self._attempts.get(key, (0, now))
                attempts += 1
                if policy.gives_up(attempts, first, now):
                    self._attempts.pop(key, None)
                    drop.append(event)
                else:
                    self._attempts[key] = (attempts, first)
                    keep.append(event)
        return keep, drop

    def _forget_attempts(self, events: PayloadDictList) -> None:
        if not self._attempts:
            return
        with self.lock:
            for event in events:
                self._attempts.pop(_attempt_key(event), None)

    def _retry_failed_events(self, failed_events: PayloadDictList) -> None:
        """Put ``failed_events`` back in the store and start the retry backoff."""
        if failed_events:
            self._return_to_store(failed_events)
        self._schedule_retry(grow=self._grows_backoff())

    def _grows_backoff(self) -> bool:
        """Whether this failure makes the next backoff delay longer."""
        return True

    def _schedule_retry(self, grow: bool) -> None:
        state = self._state
        state.retry_scheduled = True
        retry_after, state.retry_after = state.retry_after, None
        with self.lock:
            if grow or not self.retry_delay:
                self._set_retry_delay()
            delay = self.retry_delay
            if retry_after is not None:
                delay = max(delay, retry_after)
                self._not_before = max(self._not_before, time.monotonic() + retry_after)
        if self._shut_down or self._exiting:
            return
        logger.info("Retrying failed events in %.2f seconds", delay)
        if retry_after is not None:
            self.retry_timer.cancel()  # the collector's wait replaces a shorter backoff
        self._set_retry_timer(delay)

    def _should_retry(self, status_code: int) -> bool:
        """Whether events that got ``status_code`` are retried."""
        if self.is_good_status_code(status_code):
            return False
        if status_code in self.custom_retry_codes:
            return bool(self.custom_retry_codes[status_code])
        return self.retry_policy.should_retry(status_code)

    def _set_retry_delay(self) -> None:
        self.retry_delay = self.retry_policy.next_delay(self.retry_delay)

    def _reset_retry_delay(self) -> None:
        self.retry_delay = 0

    def _set_retry_timer(self, timeout: float) -> None:
        self.retry_timer.start(timeout=timeout)

    def _cancel_retry_timer(self) -> None:
        self.retry_timer.cancel()

    def _stamp(self, batch: List[Any]) -> Optional[str]:
        """Set ``stm`` on the dicts of ``batch``; return it for encoded events (else None)."""
        if self._compact_store is None:
            self.attach_sent_timestamp(batch)
            return None
        stm = str(int(time.time() * 1000))
        for event in batch:
            if type(event) is not str:
                event["stm"] = stm
        self._state.stm = stm
        return stm

    @staticmethod
    def is_good_status_code(status_code: int) -> bool:
        """True for 2xx codes."""
        return 200 <= status_code < 300

    @staticmethod
    def attach_sent_timestamp(events: PayloadDictList) -> None:
        """Set ``stm`` (send time, milliseconds, as a string) on each event, in place."""
        stm = str(int(time.time() * 1000))
        for event in events:
            event["stm"] = stm

    # ------------------------------------------------------------------ store calls

    def _return_to_store(self, events: PayloadDictList, in_flight: Optional[int] = None) -> None:
        """Put taken events back in the store for a later attempt.

        They stop counting as in flight in the same step (``in_flight`` of them, by default
        those of the send in progress), so ``pending`` never counts them twice. Events the
        store fails to keep are reported as dropped (``"store_error"``).
        """
        state = self._state
        if in_flight is None:
            in_flight = 0
            if state.taken is not None:
                in_flight = min(len(events), state.taken - state.released)
                state.released += in_flight
                state.holding -= in_flight
        deferred: _Drops = []
        outer, state.deferred = state.deferred, deferred
        lost = False
        try:
            with self._take_lock:
                try:
                    self.event_store.cleanup(events, True)
                except Exception:
                    self._store_failed("cleanup()")
                    lost = True
                self._inflight -= in_flight
                self._landed.notify_all()
        finally:
            state.deferred = outer
        for dropped, reason in deferred:
            self._report_drop(dropped, reason)
        if lost:
            self._handle_drop(events, "store_error")

    def _store_cleanup(self, events: PayloadDictList, need_retry: bool) -> None:
        """``event_store.cleanup`` that never raises; events it fails to keep are reported."""
        try:
            self.event_store.cleanup(events, need_retry)
        except Exception:
            self._store_failed("cleanup()")
            if need_retry:
                self._handle_drop(events, "store_error")

    def _store_failed(self, call: str) -> None:
        """Log a store exception (call from an ``except`` block): ERROR, at most every 10 s."""
        now = time.monotonic()
        if now >= self._store_log_at:
            self._store_log_at = now + _STORE_ERROR_LOG_INTERVAL
            logger.error("Event store %s raised", call, exc_info=True)
        else:
            logger.debug("Event store %s raised", call, exc_info=True)

    # ------------------------------------------------------------------ HTTP

    def http_post(self, data: str) -> int:
        """POST ``data`` to the collector; return the status code, or -1 without a response."""
        logger.debug("Sending POST request to %s", self.endpoint)
        try:
            response = self.request_method.post(
                self.endpoint, data=data, headers=_POST_HEADERS, timeout=self._timeout()
            )
        except requests.RequestException as error:
            logger.warning("POST request to %s failed: %s", self.endpoint, type(error).__name__)
            return NETWORK_ERROR
        return self._note_response(response)

    def http_get(self, payload: PayloadDict) -> int:
        """GET the collector's pixel with ``payload`` as the query; return the status or -1."""
        logger.debug("Sending GET request to %s", self.endpoint)
        try:
            response = self.request_method.get(
                self.endpoint, params=payload, timeout=self._timeout()
            )
        except requests.RequestException as error:
            logger.warning("GET request to %s failed: %s", self.endpoint, type(error).__name__)
            return NETWORK_ERROR
        return self._note_response(response)

    def _note_response(self, response: Any) -> int:
        """The status of ``response``; remembers its ``Retry-After`` on 429 and 503."""
        try:
            status = int(response.status_code)
        except (TypeError, ValueError):
            return NETWORK_ERROR
        if status in RETRY_AFTER_CODES:
            try:
                header = response.headers.get("Retry-After")
                if header:
                    self._state.retry_after = self.retry_policy.retry_after_delay(
                        status, str(header)
                    )
            except Exception:
                logger.debug("Unreadable Retry-After header", exc_info=True)
        return status

    def _timeout(self) -> RequestTimeout:
        """The request timeout, cut to what is left before the current deadline."""
        state = self._state
        deadline = state.deadline
        if deadline is None:
            return self.request_timeout
        remaining = max(0.05, deadline - time.monotonic())
        timeout = self.request_timeout
        if isinstance(timeout, tuple):
            state.clamped = remaining < max(timeout)
            return (min(timeout[0], remaining), min(timeout[1], remaining))
        state.clamped = remaining < timeout
        return min(timeout, remaining)

    def _http_session(self) -> requests.Session:
        session = self._session
        if session is None:
            with self.lock:
                session = self._session
                if session is None:
                    session = requests.Session()
                    # One pooled connection per sender thread at least (urllib3 keeps 10).
                    size = max(10, int(getattr(self, "thread_count", 1)))
                    for prefix in ("http://", "https://"):
                        session.mount(prefix, HTTPAdapter(pool_maxsize=size))
                    self._session = session
        return session

    def _default_post(self, url: str, **kwargs: Any) -> Any:
        # Calls requests.post when a test has patched it (1.1.0 sent through it); else the
        # lean keep-alive transport, or the emitter's own requests session when the
        # environment sets a proxy or .netrc credentials for the collector.
        if requests.post is not _ORIGINAL_REQUESTS_POST:
            return requests.post(url, **kwargs)
        transport = self._lean_transport(url)
        if transport is not None and set(kwargs) <= {"data", "headers", "timeout"}:
            return transport.post(kwargs["data"], kwargs.get("headers") or {}, kwargs["timeout"])
        return self._http_session().post(url, **kwargs)

    def _default_get(self, url: str, **kwargs: Any) -> Any:
        if requests.get is not _ORIGINAL_REQUESTS_GET:
            return requests.get(url, **kwargs)
        transport = self._lean_transport(url)
        if transport is not None and set(kwargs) <= {"params", "timeout"}:
            return transport.get(kwargs.get("params") or {}, kwargs["timeout"])
        return self._http_session().get(url, **kwargs)

    def _lean_transport(self, url: str) -> Optional[Transport]:
        """The keep-alive transport for ``url``, or None when ``requests`` must be used."""
        transport = self._transport
        if transport is not None and url == self._transport_url:
            return transport
        if url != self.endpoint or not isinstance(self.request_timeout, (int, float, tuple)):
            return None
        with self.lock:
            if self._transport is None or self._transport_url != url:
                if not transport_usable_for(url):
                    return None
                self._transport = Transport(url)
                self._transport_url = url
            return self._transport

    def _close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        if self._owns_session and self._session is not None:
            try:
                self._session.close()
            except Exception:
                logger.debug("Closing the HTTP session failed", exc_info=True)
            self._session = None

    # ------------------------------------------------------------------ timers

    def set_flush_timer(self, timeout: float) -> None:
        """Flush every ``timeout`` seconds; does nothing if the timer already runs."""
        self._timer_interval = timeout
        self.timer.start(timeout=timeout)

    def cancel_flush_timer(self) -> None:
        """Stop the periodic flush."""
        self._timer_interval = None
        self.timer.cancel()

    # ------------------------------------------------------------------ drops

    def _handle_drop(self, events: PayloadDictList, reason: str) -> None:
        """Count dropped events and report them to ``on_drop`` (once no lock is held)."""
        if not events:
            return
        self._counters.add(dropped=len(events))
        deferred = self._state.deferred
        if deferred is not None:
            deferred.append((events, reason))
            return
        self._report_drop(events, reason)

    def _report_drop(self, events: PayloadDictList, reason: str) -> None:
        callback = self.on_drop
        if callback is None:
            return
        try:
            callback(as_dicts(events), reason)
        except Exception:
            logger.exception("on_drop callback raised")

    # ------------------------------------------------------------------ lifecycle

    def _drain_at_exit(self, deadline: float) -> None:
        """At interpreter exit: give what is left one attempt, until ``deadline``."""
        self._exiting = True
        self.cancel_flush_timer()
        self._cancel_retry_timer()
        if self._shut_down or self.exit_timeout <= 0:
            return
        pending = self._pending()
        if pending == 0:
            return
        if time.monotonic() >= deadline:
            logger.warning("Exit drain skipped: %d events not sent", pending)
            return
        self._drain(deadline, wait_retry_after=True)
        self._wait_for_landing(deadline)
        left = self._pending()
        if left:
            logger.warning("%d events were not sent before exit", left)

    def _check_fork(self) -> None:
        """Reset this emitter if the process forked without running Python's fork hooks."""
        if self._pid != os.getpid():
            _lifecycle.after_fork_without_hooks(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, timers and connections; the parent keeps its events.

        Also called when a fork skipped Python's hooks (uWSGI), so it must not acquire, wait
        on or log through anything inherited: it only replaces objects. The process id is
        updated last, so other threads keep taking the reset path until it is done.
        """
        self.lock = threading.RLock()
        self._take_lock = threading.Lock()
        self._landed = threading.Condition(self._take_lock)
        self._space = threading.Condition(threading.Lock())
        self._state = _SendState()
        self._counters = Counters()
        self._attempts = {}
        self._inflight = 0
        self.retry_delay = 0
        self.retry_timer = FlushTimer(emitter=self, repeating=False)
        self.timer = FlushTimer(emitter=self, repeating=True)
        if self.bytes_queued is not None:
            self.bytes_queued = 0
        clear = getattr(self.event_store, "_clear_after_fork", None)
        if callable(clear):
            clear()
        if self._owns_session:
            self._session = None  # the parent's pooled connections are not ours to use
        self._transport = None  # nor are the parent's keep-alive connections
        self._pinned = False  # the set that pinned it in the parent is not ours
        self._pid = os.getpid()
        if self._timer_interval is not None and not self._shut_down:
            self.timer.start(timeout=self._timer_interval)
