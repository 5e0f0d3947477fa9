"""A process-wide registry of trackers, keyed by namespace."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Optional

from snowplow_tracker.emitter_configuration import EmitterConfiguration
from snowplow_tracker.emitters import AsyncEmitter, Emitter
from snowplow_tracker.subject import Subject
from snowplow_tracker.tracker import Tracker, _check_timeout
from snowplow_tracker.tracker_configuration import TrackerConfiguration
from snowplow_tracker.typing import Method

logger = logging.getLogger(__name__)


class Snowplow:
    """Creates trackers and keeps them by namespace.

    All methods are class or static methods; the registry is shared by the process.
    """

    _trackers: Dict[str, Tracker] = {}
    _lock = threading.RLock()

    @staticmethod
    def create_tracker(
        namespace: str,
        endpoint: str,
        method: Method = "post",
        app_id: Optional[str] = None,
        subject: Optional[Subject] = None,
        tracker_config: Optional[TrackerConfiguration] = None,
        emitter_config: Optional[EmitterConfiguration] = None,
    ) -> Tracker:
        """Create a tracker with one emitter and register it.

        The emitter is an ``AsyncEmitter`` when ``emitter_config.asynchronous`` is set,
        otherwise an ``Emitter``; every setting of ``emitter_config`` is passed to it.

        Args:
            namespace: Namespace of the tracker; must not be registered yet.
            endpoint: Collector endpoint, e.g. ``"collector.example.com"``.
            method: ``"post"`` or ``"get"``.
            app_id: Application ID (``aid``).
            subject: The tracker's subject.
            tracker_config: Tracker settings (a new default configuration when ``None``).
            emitter_config: Emitter settings (a new default configuration when ``None``).

        Returns:
            The new tracker.

        Raises:
            TypeError: If ``endpoint`` is ``None``, or ``namespace`` is not a string or is
                already registered (checked before anything is built).
        """
        if endpoint is None:
            raise TypeError("endpoint must be given; it is None.")
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a string, not {type(namespace).__name__}.")
        if tracker_config is None:
            tracker_config = TrackerConfiguration()
        if emitter_config is None:
            emitter_config = EmitterConfiguration()

        with Snowplow._lock:
            Snowplow._check_free(namespace)
            emitter = Snowplow._build_emitter(endpoint, method, emitter_config)
            tracker = Tracker(
                namespace=namespace,
                emitters=emitter,
                subject=subject,
                app_id=app_id,
                encode_base64=tracker_config.encode_base64,
                json_encoder=tracker_config.json_encoder,
            )
            return Snowplow.add_tracker(tracker)

    @staticmethod
    def _build_emitter(endpoint: str, method: Method, config: EmitterConfiguration) -> Emitter:
        kwargs: Dict[str, Any] = {
            "method": method,
            "batch_size": config.batch_size,
            "on_success": config.on_success,
            "on_failure": config.on_failure,
            "byte_limit": config.byte_limit,
            "request_timeout": config.request_timeout,
            "max_retry_delay_seconds": config.max_retry_delay_seconds,
            "buffer_capacity": config.buffer_capacity,
            "custom_retry_codes": config.custom_retry_codes,
            "event_store": config.event_store,
            "session": config.session,
            "retry_policy": config.retry_policy,
            "overflow_policy": config.overflow_policy,
            "block_timeout": config.block_timeout,
            "on_drop": config.on_drop,
            "exit_timeout": config.exit_timeout,
        }
        if config.protocol is not None:
            kwargs["protocol"] = config.protocol
        if config.port is not None:
            kwargs["port"] = config.port
        if config.asynchronous:
            return AsyncEmitter(endpoint, thread_count=config.thread_count, **kwargs)
        return Emitter(endpoint, **kwargs)

    @classmethod
    def _check_free(cls, namespace: str) -> None:
        if namespace in cls._trackers:
            raise TypeError(f"Tracker with namespace {namespace!r} already exists.")

    @classmethod
    def add_tracker(cls, tracker: Tracker) -> Tracker:
        """Register a tracker under its namespace.

        Args:
            tracker: The tracker.

        Returns:
            The same tracker.

        Raises:
            TypeError: If ``tracker`` is not a ``Tracker`` or its namespace is taken.
        """
        if not isinstance(tracker, Tracker):
            raise TypeError(f"tracker must be a Tracker, not {type(tracker).__name__}.")
        with cls._lock:
            namespace = tracker.get_namespace()
            cls._check_free(namespace)
            cls._trackers[namespace] = tracker
        logger.debug("Tracker with namespace %r added", namespace)
        return tracker

    @classmethod
    def remove_tracker(cls, tracker: Tracker) -> None:
        """Unregister a tracker (by its namespace).

        Args:
            tracker: The tracker.
        """
        cls.remove_tracker_by_namespace(tracker.get_namespace())

    @classmethod
    def remove_tracker_by_namespace(cls, namespace: str) -> None:
        """Unregister the tracker of a namespace, if there is one.

        Args:
            namespace: The namespace.
        """
        with cls._lock:
            removed = cls._trackers.pop(namespace, None)
        if removed is None:
            logger.info("No tracker with namespace %r to remove", namespace)
        else:
            logger.info("Tracker with namespace %r removed", namespace)

    @classmethod
    def reset(cls) -> None:
        """Unregister every tracker (the trackers are not shut down)."""
        with cls._lock:
            cls._trackers = {}

    @classmethod
    def get_tracker(cls, namespace: str) -> Optional[Tracker]:
        """Return the tracker of a namespace.

        Args:
            namespace: The namespace.

        Returns:
            The tracker, or ``None``.
        """
        return cls._trackers.get(namespace)

    @classmethod
    def shutdown(cls, timeout: float = 5.0) -> None:
        """Shut down every registered tracker (see :meth:`Tracker.shutdown`).

        The trackers stay registered. The time budget is shared by all trackers; every
        tracker is shut down even if one raises, and the first exception is re-raised.

        Args:
            timeout: Time budget in seconds for all trackers together.

        Raises:
            ValueError: If ``timeout`` is negative.
            TypeError: If ``timeout`` is not a number.
        """
        _check_timeout(timeout)
        with cls._lock:
            trackers = list(cls._trackers.values())
        deadline = time.monotonic() + timeout
        first_error: Optional[BaseException] = None
        for tracker in trackers:
            try:
                tracker.shutdown(max(0.0, deadline - time.monotonic()))
            except Exception as error:
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error
