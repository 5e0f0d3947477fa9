"""Process lifecycle hooks shared by every emitter: the exit drain and fork handling.

Emitters register here when they are created. The hooks are installed once, on the first
registration (never at import): an ``atexit`` handler that drains every live emitter within
one shared deadline, and an ``os.register_at_fork`` handler that gives every emitter a fresh
pipeline in a forked child. Emitters are held weakly, so registering never keeps one alive;
but an emitter holding events is *pinned* (held strongly) until its store is empty, so that
events tracked through an emitter the program no longer references still reach the exit
drain instead of being garbage-collected.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Set

logger = logging.getLogger("snowplow_tracker.lifecycle")

_live: weakref.WeakSet[Any] = weakref.WeakSet()
_pinned: Set[Any] = set()
_lock = threading.Lock()
_pin_lock = threading.Lock()
_installed = False
#: The process whose state (locks above, emitters' pipelines) this module reflects.
_owner_pid = os.getpid()
#: pid -> thread ident that resets the state in a child forked without Python's hooks.
_reset_claims: Dict[int, int] = {}
#: Longest wait, in seconds, for another thread's reset after such a fork.
_RESET_WAIT = 5.0
#: Seconds the exit waits past the drain deadline for the drain to report and log.
_EXIT_GRACE = 0.1


def register(emitter: Any) -> None:
    """Track ``emitter`` for the exit drain and fork handling.

    The emitter must provide ``exit_timeout`` (seconds), ``_drain_at_exit(deadline)`` and
    ``_after_fork_in_child()``.
    """
    global _installed
    if _owner_pid != os.getpid():
        after_fork_without_hooks()  # created in such a child before any emitter noticed
    with _lock:
        _live.add(emitter)
        if _installed:
            return
        _installed = True
    atexit.register(_drain_all_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_reinit_all_after_fork)


def unregister(emitter: Any) -> None:
    """Stop tracking ``emitter`` (after it was shut down)."""
    with _lock:
        _live.discard(emitter)
    with _pin_lock:
        emitter._pinned = False
        _pinned.discard(emitter)


def pin(emitter: Any) -> None:
    """Hold ``emitter`` strongly: it has events that must reach the exit drain.

    Sets ``emitter._pinned``; emitters call this when they accept an event while unpinned.
    """
    with _pin_lock:
        emitter._pinned = True
        _pinned.add(emitter)


def unpin_if_idle(emitter: Any, idle: Callable[[], bool]) -> None:
    """Release the strong hold on ``emitter`` if ``idle()`` (it holds no events).

    ``_pinned`` is cleared before ``idle()`` runs, so an event accepted meanwhile either is
    seen by ``idle()`` or pins the emitter again once this call returns.
    """
    with _pin_lock:
        if not emitter._pinned:
            return
        emitter._pinned = False
        try:
            still_busy = not idle()
        except Exception:
            still_busy = True
        if still_busy:
            emitter._pinned = True
        else:
            _pinned.discard(emitter)


def live_emitters() -> List[Any]:
    """The emitters currently registered."""
    with _lock:
        return list(_live)


def _drain_all_at_exit() -> None:
    if _owner_pid != os.getpid():
        # A child forked without Python's fork hooks that never tracked: its emitters hold
        # the parent's events, locks and (dead) threads. Reset them; nothing is ours to send.
        after_fork_without_hooks()
    emitters = live_emitters()
    if not emitters:
        return
    timeout = max(float(getattr(e, "exit_timeout", 0.0) or 0.0) for e in emitters)
    deadline = time.monotonic() + timeout
    # The drain runs in a helper thread so that nothing it waits for (a DNS lookup, which
    # request timeouts do not cover, or a transport override without a timeout) can hold
    # the exit past the deadline. Where no thread may start at exit (Python 3.12), it runs
    # here, bounded by the request timeouts it cuts to the deadline.
    helper = threading.Thread(
        target=_drain_emitters, args=(emitters, deadline), name="snowplow-exit-drain", daemon=True
    )
    try:
        helper.start()
    except RuntimeError:
        _drain_emitters(emitters, deadline)
        return
    helper.join(max(0.0, deadline - time.monotonic()) + _EXIT_GRACE)
    if helper.is_alive():
        logger.warning("Exit drain still busy at its deadline; exiting without waiting")


def _drain_emitters(emitters: List[Any], deadline: float) -> None:
    for emitter in emitters:
        try:
            emitter._drain_at_exit(deadline)
        except Exception:
            logger.exception("Exit drain of an emitter failed")


def _reinit_all_after_fork() -> None:
    global _lock, _pin_lock, _owner_pid
    _lock = threading.Lock()
    _pin_lock = threading.Lock()
    failed = 0
    for emitter in list(_live):  # a WeakSet iterates without a lock
        try:
            emitter._after_fork_in_child()
        except Exception:
            failed += 1
    _owner_pid = os.getpid()
    if failed:  # logged only now: logging's locks may be inherited too, but ours are fresh
        logger.error("Resetting %d emitters after fork failed", failed)


def after_fork_without_hooks(emitter: Any = None) -> None:
    """Reset every emitter in a child forked without ``os.register_at_fork`` hooks.

    Called when an emitter (``emitter``, if given) sees that the process id changed. The
    child inherited every lock byte for byte, possibly held by threads that do not exist
    in it, so this acquires none of them: the first thread to get here (claimed through an
    atomic ``dict.setdefault``) replaces this module's locks and each emitter's locks,
    queues, timers, session and buffer; other threads wait for it (polling, bounded).
    """
    pid = os.getpid()
    if _owner_pid != pid:
        me = threading.get_ident()
        if _reset_claims.setdefault(pid, me) == me:
            _reinit_all_after_fork()
        else:
            deadline = time.monotonic() + _RESET_WAIT
            while _owner_pid != pid and time.monotonic() < deadline:
                time.sleep(0.001)
    if emitter is not None and emitter._pid != pid:
        # Not registered here (shut down before the fork): reset it on its own.
        emitter._after_fork_in_child()
