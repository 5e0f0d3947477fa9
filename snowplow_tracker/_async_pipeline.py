"""The asynchronous emitter: a bounded pipeline with a lazily started sender.

Public through :mod:`snowplow_tracker.emitters`; kept here so that module stays readable.

Shape::

    input() --> event store --> dispatcher thread --> queue (thread_count batches)
                (bounded)        takes batch_size      --> thread_count workers --> HTTP
                                 events at a time (up to 1,000 from a backlog)

With ``thread_count=1`` (the default) there are no workers: the dispatcher sends each batch
itself, which saves two thread hand-overs per request. When more than one batch is waiting,
a second sending thread (the *lane*) joins the pass: both take batches straight from the
store, each on its own keep-alive connection, so the next request is being written while the
collector answers the last one.

Tracking calls only add to the store and, once a batch is ready, set a flag. The dispatcher
waits for that flag, honours the retry backoff and ``Retry-After``, and feeds request-sized
batches to the workers; a retryable failure ends the pass, the rest waits for the retry.
Everything is bounded: the store by its capacity, the queue by ``thread_count`` batches, and
the requests in flight by ``thread_count``.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Dict, List, Optional

import requests

from snowplow_tracker._emitter import (
    DEFAULT_EXIT_TIMEOUT,
    DEFAULT_SYNC_FLUSH_TIMEOUT,
    DropCallback,
    Emitter,
    RequestTimeout,
    logger,
)
from snowplow_tracker.delivery import DeliveryReport
from snowplow_tracker.event_store import EventStore
from snowplow_tracker.retry import RetryPolicy
from snowplow_tracker.typing import (
    FailureCallback,
    HttpProtocol,
    Method,
    PayloadDictList,
    SuccessCallback,
)

__all__ = ["AsyncEmitter"]

_STOP: PayloadDictList = []  # put on the queue (by identity) to stop one worker
_IDLE_WAIT = 30.0  # seconds the dispatcher sleeps when it has nothing to do


class AsyncEmitter(Emitter):
    """Buffers events and sends them from background threads; tracking never waits on I/O.

    A sender thread starts on first use (and again in a forked child). It takes events from
    the store, packs them into requests of ``batch_size`` events, and sends them itself
    (``thread_count=1``) or hands them to ``thread_count`` worker threads through ``queue``,
    so at most ``thread_count`` requests are in flight. During a retry backoff it sends
    nothing. Memory is bounded by ``buffer_capacity`` (the store) plus ``2 * thread_count``
    request batches (queued and in flight).

    Unlike ``Emitter``, the default ``protocol`` is ``"http"``, as in 1.1.0, and
    ``thread_count`` comes eighth among the positional parameters.

    Args:
        endpoint: Collector host, optionally with a scheme (``http://`` or ``https://``
            overrides ``protocol``), port and path prefix.
        protocol: ``"http"`` (default, as 1.1.0's ``AsyncEmitter``) or ``"https"``.
        port: Collector port; replaces any port in ``endpoint``.
        method: ``"post"`` (default; batches events) or ``"get"`` (one request per event).
        batch_size: Events buffered before a send, and most events per request (a backlog
            of more is packed up to 1,000 events and 512 KiB per request). Default 10
            for POST, 1 for GET; never more than ``buffer_capacity``.
        on_success: Called with the list of events the collector accepted.
        on_failure: Called with the number of events accepted and the list of events that
            were not.
        thread_count: Worker threads, hence most requests in flight at once (default 1;
            with 1, a second thread helps while more than one batch waits, so two).
        byte_limit: Send once the buffered events reach this size; also the most bytes in
            one POST body.
        request_timeout: Seconds, or a (connect, read) pair, for each request. Default
            (5, 10).
        max_retry_delay_seconds: Cap on the backoff between retries (default 60).
        buffer_capacity: Most events held in the default in-memory store (default 10,000).
        custom_retry_codes: ``{status: bool}`` overrides of which codes are retried.
        event_store: Where events wait (default: an ``InMemoryEventStore``).
        session: A ``requests.Session`` to send with (default: one owned by the emitter).
        retry_policy: A :class:`~snowplow_tracker.retry.RetryPolicy` replacing the one built
            from ``max_retry_delay_seconds``.
        overflow_policy: When the store is full: ``"drop_newest"`` (default),
            ``"drop_oldest"`` or ``"block"``.
        block_timeout: Longest wait, in seconds, of the ``"block"`` policy.
        on_drop: Called with events dropped before any attempt, and the reason.
        exit_timeout: Seconds the exit drain may spend at interpreter exit (default 2).
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

    def _init_pipeline(self) -> None:
        self.queue: queue.Queue[PayloadDictList] = queue.Queue(maxsize=self.thread_count)
        lock = threading.Lock()
        self._wake = threading.Condition(lock)
        self._lane_wake = threading.Condition(lock)  # the lane's own wake-ups
        self._lane: Optional[threading.Thread] = None
        self._lane_go = False  # a pass wants the lane (under the lock)
        self._lane_busy = False  # the lane is sending (under the lock)
        self._pass_left = 0  # events the current pass may still take (under the lock)
        self._callback_lock = threading.RLock()  # callbacks run one at a time
        self._start_lock = threading.Lock()
        self._flush_requested = False
        self._force = False
        self._flush_wanted = 0
        self._flush_done = 0
        self._round_failed = False
        self._stopping = False
        self._batches_out = 0  # batches put on the queue and not finished (under _wake)
        self._dispatcher: Optional[threading.Thread] = None
        self._workers: List[threading.Thread] = []

    # ------------------------------------------------------------------ threads

    def _ensure_started(self) -> bool:
        """Start the dispatcher and workers if they are not running; False if they cannot."""
        dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher.is_alive():
            return True
        with self._start_lock:
            if self._shut_down or self._stopping:
                return False
            dispatcher = self._dispatcher
            if dispatcher is not None and dispatcher.is_alive():
                return True
            try:
                self._workers = [w for w in self._workers if w.is_alive()]
                # With one thread the dispatcher sends itself: no hand-over per batch.
                workers = self.thread_count if self.thread_count > 1 else 0
                for index in range(len(self._workers), workers):
                    worker = threading.Thread(
                        target=self.consume, name=f"snowplow-sender-{index}", daemon=True
                    )
                    worker.start()
                    self._workers.append(worker)
                dispatcher = threading.Thread(
                    target=self._dispatch_loop, name="snowplow-dispatcher", daemon=True
                )
                dispatcher.start()
            except RuntimeError:  # the interpreter is shutting down
                logger.debug("Could not start the sender threads", exc_info=True)
                return False
            self._dispatcher = dispatcher
            return True

    def consume(self) -> None:
        """Worker loop: send each request-sized batch put on ``queue``."""
        self._state.sender = True
        while True:
            events = self.queue.get()
            try:
                if events is _STOP:
                    return
                self._send_taken(events)
            except BaseException:  # a worker must outlive anything a callback raises
                logger.exception("Sending a batch failed")
            finally:
                self.queue.task_done()
                if events is not _STOP:
                    self._batch_finished()

    def _batch_finished(self) -> None:
        with self._wake:
            self._batches_out -= 1
            if self._batches_out <= 0:
                self._wake.notify_all()

    def _dispatch_loop(self) -> None:
        self._state.sender = True
        while True:
            with self._wake:
                while True:
                    if self._stopping:
                        return
                    wait = _IDLE_WAIT
                    if self._flush_requested or self._force:
                        wait = self._blocked_for()
                        if wait <= 0:
                            break
                    self._wake.wait(wait)
                wanted = self._flush_wanted
                self._flush_requested = False
                self._force = False
            try:
                self._send_pass()
            except Exception:
                logger.exception("Sender loop failed; continuing")
            with self._wake:
                self._flush_done = max(self._flush_done, wanted)
                self._wake.notify_all()

    def _blocked_for(self) -> float:
        """Seconds before the dispatcher may send (<= 0: now). Call with ``_wake`` held."""
        wait = self._not_before - time.monotonic()
        if not self._force and self.retry_timer.is_active():
            wait = max(wait, self.retry_timer.remaining(), 0.005)
        return wait

    def _send_pass(self) -> None:
        """Send what the store holds now, one batch per worker at a time, until a failure."""
        target = self._store_pending(None)
        self._round_failed = False
        if self.thread_count <= 1:
            self._lane_pass(target)
            return
        taken = 0
        while taken < target and not self._stopping and not self._round_failed:
            if time.monotonic() < self._not_before:
                break
            events = self._take_events(self._take_size())
            if not events:
                break
            taken += len(events)
            if not self._hand_over(events):
                break
        with self._wake:  # wait for the pass's requests (not when stopping)
            while self._batches_out > 0 and not self._stopping:
                self._wake.wait(0.5)

    # -- one sender thread: the dispatcher, joined by the lane when a backlog waits ---------

    _USE_LANE = True  # tests switch the lane off to compare

    def _lane_pass(self, target: int) -> None:
        """Send up to ``target`` events from this thread, with the lane when it helps."""
        with self._wake:
            self._pass_left = target
        if target > self._take_size() and self._USE_LANE and self._start_lane():
            with self._wake:
                self._lane_go = True
                self._lane_wake.notify()
        self._send_lane()
        with self._wake:
            self._pass_left = 0  # the lane stops after the request it is making
            while (self._lane_go or self._lane_busy) and not self._stopping:
                lane = self._lane
                if lane is None or not lane.is_alive():
                    self._lane_go = self._lane_busy = False
                    break
                self._lane_wake.wait(0.5)

    def _send_lane(self) -> None:
        """Take and send batches until the pass's share is used, a failure, or a stop."""
        while not self._stopping and not self._round_failed:
            if time.monotonic() < self._not_before:
                return
            size = self._take_size()
            with self._wake:
                if self._pass_left <= 0:
                    return
                size = min(size, self._pass_left)
                self._pass_left -= size
            events = self._take_events(size)
            if not events:
                with self._wake:
                    self._pass_left = 0
                return
            self._send_taken(events)

    def _start_lane(self) -> bool:
        lane = self._lane
        if lane is not None and lane.is_alive():
            return True
        try:
            lane = threading.Thread(target=self._lane_loop, name="snowplow-lane", daemon=True)
            lane.start()
        except RuntimeError:  # the interpreter is shutting down
            return False
        self._lane = lane
        return True

    def _lane_loop(self) -> None:
        """The lane: wait for a pass that wants it, send its share, report back."""
        self._state.sender = True
        while True:
            with self._wake:
                while not self._lane_go:
                    if self._stopping:
                        return
                    self._lane_wake.wait(_IDLE_WAIT)
                self._lane_go = False
                self._lane_busy = True
            try:
                self._send_lane()
            except Exception:
                logger.exception("Sender lane failed; continuing")
            finally:
                with self._wake:
                    self._lane_busy = False
                    self._lane_wake.notify_all()

    def _run_callbacks(self, success: PayloadDictList, failure: PayloadDictList) -> None:
        if (success and self.on_success is not None) or (failure and self.on_failure is not None):
            with self._callback_lock:  # two sending threads; callbacks still one at a time
                super()._run_callbacks(success, failure)

    def _hand_over(self, events: PayloadDictList) -> bool:
        """Queue a batch for the workers (waits for a free slot); when the emitter is stopping,
        put it back in the store instead and return False."""
        with self._wake:
            self._batches_out += 1
        while not self._stopping:
            try:
                self.queue.put(events, timeout=0.1)
                return True
            except queue.Full:
                continue
        self._give_back(events)
        return False

    def _give_back(self, events: PayloadDictList) -> None:
        """Return a batch that was never sent to the store (it stays pending)."""
        self._return_to_store(events, in_flight=len(events))
        self._batch_finished()

    def _stop_sending(self) -> bool:
        return self._round_failed or super()._stop_sending()

    def _grows_backoff(self) -> bool:
        # Concurrent failures of one pass count once, so the backoff grows by one step.
        with self.lock:
            first = not self._round_failed
            self._round_failed = True
        return first

    # ------------------------------------------------------------------ flushing

    def _flush_for_input(self) -> None:
        if (
            self._flush_requested
            and self._dispatcher is not None
            and type(self).flush is AsyncEmitter.flush
        ):
            return  # already asked (input() checked for a fork just before)
        self.flush()

    def _send_leftovers(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Ask the sender thread to send everything buffered; returns at once.

        Nothing is sent during a retry backoff; the backoff's end triggers the send.
        """
        self._check_fork()
        if self._flush_requested and self._dispatcher is not None:
            return  # already asked; the dispatcher has not picked it up yet
        with self._wake:
            self._flush_requested = True
            self._wake.notify()
        self._ensure_started()

    def sync_flush(self) -> None:
        """Send everything buffered and wait until each event had one attempt.

        Unlike 1.1.0, a failing collector does not make this loop: failed events stay
        buffered for the backoff retry, and the call returns within
        ``DEFAULT_SYNC_FLUSH_TIMEOUT`` seconds at most, and at once while the collector's
        ``Retry-After`` forbids sending.
        """
        self._flush_and_wait(DEFAULT_SYNC_FLUSH_TIMEOUT, wait_retry_after=False)

    def force_flush(self, timeout: float = 5.0) -> DeliveryReport:
        """Send everything buffered now and wait up to ``timeout`` seconds for the result.

        Every buffered event gets one attempt (a retry backoff in progress is skipped, a
        ``Retry-After`` wait is honoured); a retryable failure ends the flush early.
        """
        return self._flush_and_wait(timeout, wait_retry_after=True)

    def _flush_and_wait(self, timeout: float, wait_retry_after: bool) -> DeliveryReport:
        before = self._counters.snapshot(0)
        deadline = time.monotonic() + max(0.0, timeout)
        self._check_fork()
        if self._shut_down or self._pending() == 0:
            return self._report_since(before, deadline)
        if not wait_retry_after and time.monotonic() < self._not_before:
            return self._report_since(before, deadline)
        if self._state.sender:
            # Called from a callback on a sender thread: waiting would wait for this very
            # thread. Ask for the flush and return.
            self.flush()
            return self._report_since(before, deadline)
        with self._wake:
            self._flush_wanted += 1
            wanted = self._flush_wanted
            self._force = True
            self._wake.notify_all()
        if not self._ensure_started():
            # Threads cannot run (interpreter exiting, or stopped): send from here.
            self._round_failed = False
            self._drain(deadline, wait_retry_after=wait_retry_after)
            return self._report_since(before, deadline)
        with self._wake:
            while self._flush_done < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
        return self._report_since(before, deadline)

    # ------------------------------------------------------------------ lifecycle

    def _stop_sender(self) -> None:
        self._stop_threads(timeout=0.5)

    def _stop_threads(self, timeout: float) -> None:
        """Stop the dispatcher, then the workers; batches not started go back to the store.

        Waits up to ``timeout`` seconds for the workers, unless a request is still in flight
        (its worker ends once the request does).
        """
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            self._lane_wake.notify_all()
        current = threading.current_thread()
        dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher is not current:
            dispatcher.join(1.0)  # it stops within 0.1 s unless a store call holds it
        self._requeue_waiting_batches()
        for _ in self._workers:
            try:
                self.queue.put_nowait(_STOP)
            except queue.Full:
                break
        if self._inflight:
            return
        deadline = time.monotonic() + timeout
        for worker in [*self._workers, self._lane]:
            if worker is not None and worker is not current:
                worker.join(max(0.0, deadline - time.monotonic()))

    def _requeue_waiting_batches(self) -> None:
        """Put batches still waiting in ``queue`` back in the store (they stay pending)."""
        while True:
            try:
                events = self.queue.get_nowait()
            except queue.Empty:
                return
            try:
                if events is not _STOP:
                    self._give_back(events)
            finally:
                self.queue.task_done()

    def _drain_at_exit(self, deadline: float) -> None:
        self._exiting = True
        if self._shut_down or self.exit_timeout <= 0 or self._pending() == 0:
            super()._drain_at_exit(deadline)
            return
        # Let the batches already handed to workers finish, stop the dispatcher, then send
        # the rest from this thread (new threads may not start while the interpreter exits).
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            self._lane_wake.notify_all()
        while self._inflight > 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        self._round_failed = False
        super()._drain_at_exit(deadline)

    def _after_fork_in_child(self) -> None:
        self._init_pipeline()
        super()._after_fork_in_child()
