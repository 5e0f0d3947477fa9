"""Emitters: they buffer the events a tracker produces and send them to a collector.

:class:`Emitter` sends in the caller's thread, as snowplow-tracker 1.1.0 does, but never
longer than its request timeout, and never while it is backing off after a failure.
:class:`AsyncEmitter` never does I/O in the caller's thread: a sender thread, started on
first use (and again after ``fork()``), takes events from the store and sends them with at
most ``thread_count`` requests in flight.

Both keep 1.1.0's seams: ``input`` -> ``flush`` -> ``send_events`` -> ``http_post`` /
``http_get``, the ``on_success(list)`` and ``on_failure(count, list)`` callbacks, and the
``timer`` / ``retry_timer`` objects. Both are drained at interpreter exit within a deadline,
count what they sent, failed and dropped (``stats()``), and can be flushed with a timeout
(``force_flush``) or shut down (``shutdown``).
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

import requests

from snowplow_tracker import _lifecycle
from snowplow_tracker._packing import PAYLOAD_DATA_SCHEMA, is_oversized, post_body, split_batches
from snowplow_tracker.contracts import one_of
from snowplow_tracker.delivery import Counters, DeliveryReport, DeliveryStats
from snowplow_tracker.event_store import EventStore, InMemoryEventStore
from snowplow_tracker.retry import RetryPolicy
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
#: Used when ``request_timeout`` is None: (connect, read) seconds. 1.1.0 had no timeout.
DEFAULT_REQUEST_TIMEOUT: Tuple[float, float] = (5.0, 10.0)
#: Default deadline, in seconds, for sending what is left when the interpreter exits.
DEFAULT_EXIT_TIMEOUT = 2.0
#: Upper bound, in seconds, on a ``sync_flush()`` call.
DEFAULT_SYNC_FLUSH_TIMEOUT = 60.0
DEFAULT_BUFFER_CAPACITY = 10000
OVERFLOW_POLICIES = ("drop_newest", "drop_oldest", "block")

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "METHODS",
    "PAYLOAD_DATA_SCHEMA",
    "PROTOCOLS",
    "AsyncEmitter",
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

RequestTimeout = Union[float, Tuple[float, float]]
DropCallback = Callable[[PayloadDictList, str], None]


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

    def start(self, timeout: float) -> bool:
        """Start the timer; return False (and change nothing) if it is already active."""
        with self.lock:
            if self.is_active():
                return False
            self._schedule_timer(timeout)
            return True

    def cancel(self) -> None:
        """Stop the timer; a flush already running finishes."""
        with self.lock:
            self._stop.set()
            self.timer = None

    def is_active(self) -> bool:
        """True while the timer is waiting to fire."""
        thread = self.timer
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    def _schedule_timer(self, timeout: float) -> None:
        self._stop = threading.Event()
        thread = threading.Thread(
            target=self._run,
            args=(timeout, self._stop),
            name="snowplow-flush-timer" if self.repeating else "snowplow-retry-timer",
            daemon=True,
        )
        self.timer = thread
        thread.start()

    def _run(self, timeout: float, stop: threading.Event) -> None:
        while not stop.wait(timeout):
            if not self.repeating:
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


class _SendState(threading.local):
    """Per-thread state of a send: deadline, last Retry-After, whether a retry was scheduled."""

    deadline: Optional[float] = None
    retry_after: Optional[float] = None
    retry_scheduled: bool = False


class Emitter(EmitterProtocol):
    """Buffers events and sends them to a collector from the calling thread.

    Args:
        endpoint: Collector host, optionally with a scheme (``http://`` or ``https://``
            overrides ``protocol``), port and path prefix.
        protocol: ``"https"`` (default) or ``"http"``.
        port: Collector port; replaces any port in ``endpoint``.
        method: ``"post"`` (default; batches events) or ``"get"`` (one request per event).
        batch_size: Events buffered before a send, and most events per request. Default 10
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
            (``"buffer_full"``, ``"shutdown"``, ...).
        exit_timeout: Seconds the exit drain may spend sending what is left at interpreter
            exit (default 2); 0 disables the drain.
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
        self.byte_limit = byte_limit
        self.bytes_queued: Optional[int] = None if byte_limit is None else 0

        self.on_success = on_success
        self.on_failure = on_failure
        self.on_drop = on_drop
        self.overflow_policy = overflow_policy
        self.block_timeout = block_timeout
        self.exit_timeout = exit_timeout

        self._store_reports_drops = False
        if event_store is None:
            event_store = InMemoryEventStore(
                logger,
                DEFAULT_BUFFER_CAPACITY if buffer_capacity is None else buffer_capacity,
                overflow="drop_oldest" if overflow_policy == "drop_oldest" else "drop_newest",
            )
        if isinstance(event_store, InMemoryEventStore) and event_store.on_drop is None:
            event_store.on_drop = self._handle_drop
            self._store_reports_drops = True
        self.event_store = event_store

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
        if session is not None:
            self.request_method = Requester(post=session.post, get=session.get)
        else:
            self.request_method = Requester(post=self._default_post, get=self._default_get)

        self._counters = Counters()
        self._attempts: Dict[Any, Tuple[int, float]] = {}
        self._inflight = 0
        self._state = _SendState()
        self._space = threading.Condition(threading.Lock())
        self._shut_down = False
        self._timer_interval: Optional[float] = None
        self._pid = os.getpid()
        _lifecycle.register(self)

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
        """Buffer one event (a copy of ``payload``) and flush once a limit is reached."""
        if self._pid != os.getpid():
            self._after_fork_in_child()
        if self.method == "post":
            event = dict(zip(payload, map(str, payload.values())))
        else:
            event = dict(payload)
        if self._shut_down:
            logger.warning("Emitter is shut down: dropping an event")
            self._handle_drop([event], "shutdown")
            return
        if self.overflow_policy == "block":
            self._wait_for_space()
        with self.lock:
            if self.bytes_queued is not None:
                self.bytes_queued += len(str(payload))
            added = self.event_store.add_event(event)
            if added:
                self._counters.accepted += 1
            flush_now = self.reached_limit()
        if not added and not self._store_reports_drops:
            self._handle_drop([event], "store_refused")
        if flush_now:
            self.flush()

    def reached_limit(self) -> bool:
        """True once the buffer holds ``batch_size`` events or ``byte_limit`` bytes."""
        if self.byte_limit is None:
            return self.event_store.size() >= self.batch_size
        return (
            self.event_store.size() >= self.batch_size
            or (self.bytes_queued or 0) >= self.byte_limit
        )

    def _wait_for_space(self) -> None:
        capacity = getattr(self.event_store, "buffer_capacity", None)
        if not isinstance(capacity, int) or self.event_store.size() < capacity:
            return
        self.flush()
        deadline = time.monotonic() + self.block_timeout
        with self._space:
            while self.event_store.size() >= capacity:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._space.wait(remaining)

    # ------------------------------------------------------------------ flushing

    def flush(self) -> None:
        """Send the buffered events now, in this thread, unless a retry backoff is running."""
        with self.lock:
            if self.retry_timer.is_active():
                return
            events = self._take_events()
        self._send_taken(events)

    def sync_flush(self) -> None:
        """Send every buffered event now, in this thread, even during a retry backoff.

        Each event gets one attempt; events that fail are kept for a later retry. Returns
        within ``DEFAULT_SYNC_FLUSH_TIMEOUT`` seconds at most.
        """
        logger.debug("Starting synchronous flush")
        self._drain_now(time.monotonic() + DEFAULT_SYNC_FLUSH_TIMEOUT)

    def async_flush(self) -> None:
        """Does nothing; exists for the ``EmitterProtocol``."""

    def force_flush(self, timeout: float = 5.0) -> DeliveryReport:
        """Send everything buffered now, waiting at most ``timeout`` seconds.

        Every buffered event gets one attempt (a retry backoff in progress is skipped); a
        retryable failure stops the flush and keeps the rest for later.

        Returns:
            What was sent, failed and dropped during the call, and what is still pending.
        """
        before = self._counters.snapshot(0)
        deadline = time.monotonic() + max(0.0, timeout)
        self._drain_now(deadline)
        return self._report_since(before, deadline)

    def shutdown(self, timeout: float = 5.0) -> DeliveryReport:
        """Flush (as :meth:`force_flush`) and stop: later events are dropped and counted.

        With ``timeout <= 0`` nothing more is sent: buffered events stay in the store
        (lost with an in-memory store, kept with a durable one) and count as pending.

        Returns:
            The report of the final flush.
        """
        if timeout > 0:
            report = self.force_flush(timeout)
        else:
            report = DeliveryReport(pending=self._pending(), timed_out=self._pending() > 0)
        self._shut_down = True
        self.cancel_flush_timer()
        self._cancel_retry_timer()
        self._close()
        _lifecycle.unregister(self)
        return report

    def stats(self) -> DeliveryStats:
        """Counters since creation: accepted, sent, failed, dropped, retried, requests, pending."""
        return self._counters.snapshot(self._pending())

    def _pending(self) -> int:
        return self.event_store.size() + self._inflight

    def _report_since(self, before: DeliveryStats, deadline: float) -> DeliveryReport:
        after = self._counters.snapshot(self._pending())
        return DeliveryReport(
            sent=after.sent - before.sent,
            failed=after.failed - before.failed,
            dropped=after.dropped - before.dropped,
            pending=after.pending,
            timed_out=after.pending > 0 and time.monotonic() >= deadline,
        )

    def _take_events(self, limit: Optional[int] = None) -> PayloadDictList:
        """Take events from the store (call with ``self.lock`` held)."""
        if limit is not None and getattr(self.event_store, "supports_batch_limit", False):
            events = self.event_store.get_events_batch(limit)  # type: ignore[call-arg]
        else:
            events = self.event_store.get_events_batch()
        if self.bytes_queued is not None:
            self.bytes_queued = 0
        self._inflight += len(events)
        if events and self.overflow_policy == "block":
            with self._space:
                self._space.notify_all()
        return events

    def _send_taken(self, events: PayloadDictList) -> None:
        """Send events taken from the store through ``send_events``, keeping the accounting."""
        try:
            self.send_events(events)
        finally:
            with self.lock:
                self._inflight -= len(events)

    def _drain_now(self, deadline: Optional[float]) -> None:
        """Send what is buffered from this thread, once, until empty, failing, or the deadline."""
        state = self._state
        state.deadline = deadline
        state.retry_scheduled = False
        try:
            while not state.retry_scheduled:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                with self.lock:
                    events = self._take_events()
                if not events:
                    return
                self._send_taken(events)
        finally:
            state.deadline = None

    def _deadline_passed(self) -> bool:
        deadline = self._state.deadline
        return deadline is not None and time.monotonic() >= deadline

    # ------------------------------------------------------------------ sending

    def send_events(self, evts: PayloadDictList) -> None:
        """Send ``evts`` in requests of at most ``batch_size`` events (and ``byte_limit`` bytes).

        Calls ``on_success`` with the accepted events and ``on_failure`` with the rest; puts
        retryable failures back in the store and starts the retry backoff. A retryable
        failure stops the send: later requests are kept for the retry without being tried.
        """
        if not evts:
            logger.debug("Skipping flush since the buffer is empty")
            return
        success: PayloadDictList = []
        failure: PayloadDictList = []
        retry: PayloadDictList = []
        give_up: PayloadDictList = []
        unsent: PayloadDictList = []
        last_status = 0

        if self.method == "post":
            batches: Deque[PayloadDictList] = collections.deque(
                split_batches(evts, max(1, self.batch_size), self.byte_limit)
            )
        else:
            batches = collections.deque([event] for event in evts)
        while batches:
            batch = batches.popleft()
            if retry or self._stop_sending():
                unsent.extend(batch)
                continue
            self.attach_sent_timestamp(batch)
            if self.method == "post":
                status = self.http_post(post_body(batch))
            else:
                status = self.http_get(batch[0])
            self._counters.add(requests=1)
            last_status = status
            if self.is_good_status_code(status):
                success.extend(batch)
            elif status == 413 and len(batch) > 1:
                middle = len(batch) // 2
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
            self.event_store.cleanup(finished, False)
            self._forget_attempts(finished)
        self._counters.add(sent=len(success), failed=len(give_up), retried=len(retry))
        if retry or unsent:
            self._retry_failed_events(retry + unsent)
        elif success:
            self._reset_retry_delay()

    def _stop_sending(self) -> bool:
        return self._deadline_passed()

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
                key = event.get("eid") or id(event)
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
                self._attempts.pop(event.get("eid") or id(event), None)

    def _retry_failed_events(self, failed_events: PayloadDictList) -> None:
        """Put ``failed_events`` back in the store and start the retry backoff."""
        self.event_store.cleanup(failed_events, True)
        state = self._state
        state.retry_scheduled = True
        with self.lock:
            self._set_retry_delay()
            delay = self.retry_delay
        if state.retry_after is not None:
            delay = max(delay, state.retry_after)
            state.retry_after = None
        logger.info("Retrying %d events in %.2f seconds", len(failed_events), delay)
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
            return -1
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
            return -1
        return self._note_response(response)

    def _note_response(self, response: Any) -> int:
        status = int(response.status_code)
        header = response.headers.get("Retry-After") if response.headers else None
        if header:
            self._state.retry_after = self.retry_policy.retry_after_delay(status, header)
        return status

    def _timeout(self) -> RequestTimeout:
        deadline = self._state.deadline
        if deadline is None:
            return self.request_timeout
        remaining = max(0.05, deadline - time.monotonic())
        timeout = self.request_timeout
        if isinstance(timeout, tuple):
            return (min(timeout[0], remaining), min(timeout[1], remaining))
        return min(timeout, remaining)

    def _http_session(self) -> requests.Session:
        session = self._session
        if session is None:
            with self.lock:
                session = self._session
                if session is None:
                    session = self._session = requests.Session()
        return session

    def _default_post(self, url: str, **kwargs: Any) -> Any:
        # Calls requests.post when a test has patched it (1.1.0 sent through it), else
        # the emitter's own session, which reuses connections.
        if requests.post is not _ORIGINAL_REQUESTS_POST:
            return requests.post(url, **kwargs)
        return self._http_session().post(url, **kwargs)

    def _default_get(self, url: str, **kwargs: Any) -> Any:
        if requests.get is not _ORIGINAL_REQUESTS_GET:
            return requests.get(url, **kwargs)
        return self._http_session().get(url, **kwargs)

    def _close(self) -> None:
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
        self._counters.add(dropped=len(events))
        if self.on_drop is not None:
            try:
                self.on_drop(events, reason)
            except Exception:
                logger.exception("on_drop callback raised")

    # ------------------------------------------------------------------ lifecycle

    def _drain_at_exit(self, deadline: float) -> None:
        """At interpreter exit: send what is left, until ``deadline``."""
        self.cancel_flush_timer()
        self._cancel_retry_timer()
        if self._shut_down or self._pending() == 0:
            return
        if time.monotonic() >= deadline:
            logger.warning("Exit drain skipped: %d events not sent", self._pending())
            return
        self._drain_now(deadline)
        left = self._pending()
        if left:
            logger.warning("%d events were not sent before exit", left)

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, timers and connections; the parent keeps its events."""
        self._pid = os.getpid()
        self.lock = threading.RLock()
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
            self._session = None
        if self._timer_interval is not None and not self._shut_down:
            self.timer.start(timeout=self._timer_interval)


_STOP: PayloadDictList = []


class AsyncEmitter(Emitter):
    """Buffers events and sends them from background threads; tracking never waits on I/O.

    A sender thread starts on first use (and again in a forked child). It takes events from
    the store, packs them into requests of ``batch_size`` events, and hands them to
    ``thread_count`` worker threads through ``queue``, so at most ``thread_count`` requests
    are in flight. During a retry backoff it sends nothing. Memory is bounded by
    ``buffer_capacity`` (the store) plus the requests in flight.

    Args are those of :class:`Emitter`, plus ``thread_count`` (worker threads, default 1).
    Unlike ``Emitter``, the default ``protocol`` is ``"http"``, as in 1.1.0.
    """

    def __init__(
        self,
        endpoint: str,
        protocol: HttpProtocol = "http",
        port: Optional[int] = None,
        method: Method = "post",
        batch_size: Optional[int] = None,
        on_success: Optional[SuccessCallback] = None,
        on_failure: Optional[FailureCallback] = None,
        thread_count: int = 1,
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
        self.thread_count = max(1, int(thread_count))
        self._init_pipeline()
        super().__init__(
            endpoint,
            protocol,
            port,
            method,
            batch_size,
            on_success,
            on_failure,
            byte_limit,
            request_timeout,
            max_retry_delay_seconds,
            buffer_capacity,
            custom_retry_codes,
            event_store,
            session,
            retry_policy=retry_policy,
            overflow_policy=overflow_policy,
            block_timeout=block_timeout,
            on_drop=on_drop,
            exit_timeout=exit_timeout,
        )
        if self.event_store.size() > 0:
            # Events left by an earlier process in a durable store: send them now.
            self.flush()

    def _init_pipeline(self) -> None:
        self.queue: queue.Queue[PayloadDictList] = queue.Queue(maxsize=self.thread_count)
        self._wake = threading.Condition(threading.Lock())
        self._start_lock = threading.Lock()
        self._flush_requested = False
        self._force = False
        self._flush_wanted = 0
        self._flush_done = 0
        self._round_failed = False
        self._stopping = False
        self._dispatcher: Optional[threading.Thread] = None
        self._workers: List[threading.Thread] = []

    # ------------------------------------------------------------------ threads

    def _ensure_started(self) -> None:
        dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher.is_alive():
            return
        with self._start_lock:
            if self._shut_down or self._stopping:
                return
            dispatcher = self._dispatcher
            if dispatcher is not None and dispatcher.is_alive():
                return
            self._workers = [w for w in self._workers if w.is_alive()]
            for index in range(len(self._workers), self.thread_count):
                worker = threading.Thread(
                    target=self.consume, name=f"snowplow-sender-{index}", daemon=True
                )
                worker.start()
                self._workers.append(worker)
            dispatcher = threading.Thread(
                target=self._dispatch_loop, name="snowplow-dispatcher", daemon=True
            )
            dispatcher.start()
            self._dispatcher = dispatcher

    def consume(self) -> None:
        """Worker loop: send each request-sized batch put on ``queue``."""
        while True:
            events = self.queue.get()
            try:
                if events is _STOP:
                    return
                self._send_taken(events)
            except Exception:
                logger.exception("Sending a batch failed")
            finally:
                self.queue.task_done()

    def _dispatch_loop(self) -> None:
        while True:
            with self._wake:
                while True:
                    if self._stopping:
                        return
                    backoff = self.retry_timer.is_active() and not self._force
                    if (self._flush_requested or self._force) and not backoff:
                        break
                    self._wake.wait(1.0 if backoff else 5.0)
                wanted = self._flush_wanted
                self._flush_requested = False
                self._force = False
            try:
                self._send_rounds()
            except Exception:
                logger.exception("Sender loop failed; continuing")
            with self._wake:
                self._flush_done = max(self._flush_done, wanted)
                self._wake.notify_all()

    def _send_rounds(self) -> None:
        """Send the store's events, ``thread_count`` requests at a time, until empty or failing."""
        per_round = max(1, self.batch_size) * self.thread_count
        while not self._stopping:
            with self.lock:
                events = self._take_events(per_round)
            if not events:
                return
            self._round_failed = False
            if self.method == "post":
                batches = list(split_batches(events, max(1, self.batch_size), self.byte_limit))
            else:
                batches = [[event] for event in events]
            for batch in batches:
                self.queue.put(batch)
            self.queue.join()
            if self._round_failed:
                return

    def _stop_sending(self) -> bool:
        return self._round_failed or self._deadline_passed()

    def _retry_failed_events(self, failed_events: PayloadDictList) -> None:
        self._round_failed = True
        super()._retry_failed_events(failed_events)

    # ------------------------------------------------------------------ flushing

    def flush(self) -> None:
        """Ask the sender thread to send everything buffered; returns at once.

        Nothing is sent during a retry backoff; the backoff's end triggers the send.
        """
        with self._wake:
            self._flush_requested = True
            self._wake.notify()
        self._ensure_started()

    def sync_flush(self) -> None:
        """Send everything buffered and wait until each event had one attempt.

        Unlike 1.1.0, a failing collector does not make this loop: failed events stay
        buffered for the backoff retry, and the call returns within
        ``DEFAULT_SYNC_FLUSH_TIMEOUT`` seconds at most.
        """
        self.force_flush(DEFAULT_SYNC_FLUSH_TIMEOUT)

    def force_flush(self, timeout: float = 5.0) -> DeliveryReport:
        """Send everything buffered now and wait up to ``timeout`` seconds for the result."""
        before = self._counters.snapshot(0)
        deadline = time.monotonic() + max(0.0, timeout)
        if self._pid != os.getpid():
            self._after_fork_in_child()
        if self._pending() == 0:
            return self._report_since(before, deadline)
        with self._wake:
            self._flush_wanted += 1
            wanted = self._flush_wanted
            self._force = True
            self._wake.notify_all()
        self._ensure_started()
        dispatcher = self._dispatcher
        if dispatcher is None or not dispatcher.is_alive():
            # Shut down, or threads cannot start (interpreter exiting): send from here.
            self._round_failed = False
            self._drain_now(deadline)
            return self._report_since(before, deadline)
        with self._wake:
            while self._flush_done < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
        return self._report_since(before, deadline)

    def shutdown(self, timeout: float = 5.0) -> DeliveryReport:
        """Flush within ``timeout`` seconds, then stop the threads; later events are dropped."""
        report = super().shutdown(timeout)
        self._stop_threads(timeout=0.5)
        return report

    def _stop_threads(self, timeout: float) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for _ in self._workers:
            try:
                self.queue.put(_STOP, timeout=timeout)
            except queue.Full:
                break
        deadline = time.monotonic() + timeout
        for thread in [*self._workers, self._dispatcher]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _drain_at_exit(self, deadline: float) -> None:
        self.cancel_flush_timer()
        self._cancel_retry_timer()
        if self._shut_down or self._pending() == 0:
            return
        # Let a round in flight finish, then stop the sender and drain from this thread.
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        while self._inflight > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self._round_failed = False
        super()._drain_at_exit(deadline)

    def _after_fork_in_child(self) -> None:
        self._init_pipeline()
        super()._after_fork_in_child()
