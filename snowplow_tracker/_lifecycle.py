"""Process lifecycle hooks shared by every emitter: the exit drain and fork handling.

Emitters register here when they are created. The hooks are installed once, on the first
registration (never at import): an ``atexit`` handler that drains every live emitter within
one shared deadline, and an ``os.register_at_fork`` handler that gives every emitter a fresh
pipeline in a forked child. Emitters are held weakly, so registering never keeps one alive.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Any, List

logger = logging.getLogger("snowplow_tracker.lifecycle")

_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False


def register(emitter: Any) -> None:
    """Track ``emitter`` for the exit drain and fork handling.

    The emitter must provide ``exit_timeout`` (seconds), ``_drain_at_exit(deadline)`` and
    ``_after_fork_in_child()``.
    """
    global _installed
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


def live_emitters() -> List[Any]:
    """The emitters currently registered."""
    with _lock:
        return list(_live)


def _drain_all_at_exit() -> None:
    emitters = live_emitters()
    if not emitters:
        return
    timeout = max(float(getattr(e, "exit_timeout", 0.0) or 0.0) for e in emitters)
    deadline = time.monotonic() + timeout
    for emitter in emitters:
        try:
            emitter._drain_at_exit(deadline)
        except Exception:
            logger.exception("Exit drain of an emitter failed")


def _reinit_all_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    for emitter in list(_live):
        try:
            emitter._after_fork_in_child()
        except Exception:
            logger.exception("Resetting an emitter after fork failed")
