"""Configuration of the emitter built by :meth:`Snowplow.create_tracker`."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Optional, Tuple, Union

import requests

from snowplow_tracker.emitters import OVERFLOW_POLICIES, PROTOCOLS
from snowplow_tracker.event_store import EventStore
from snowplow_tracker.retry import RetryPolicy
from snowplow_tracker.typing import FailureCallback, PayloadDictList, SuccessCallback

logger = logging.getLogger(__name__)

RequestTimeout = Union[float, Tuple[float, float]]
"""Seconds, or a ``(connect, read)`` pair of seconds."""

DropCallback = Callable[[PayloadDictList, str], None]
"""Called with events dropped before any send attempt and the reason."""

_EVENT_STORE_METHODS = ("add_event", "get_events_batch", "cleanup", "size")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_count(name: str, value: Any) -> None:
    # 1.1.0 reported every problem with these three settings as a ValueError.
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer or None, not {value!r}.")


def _check_callback(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, not {type(value).__name__}.")


def _check_seconds(name: str, value: Any) -> None:
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}.")
    if not value >= 0:
        raise ValueError(f"{name} must be greater than or equal to 0, not {value!r}.")


class EmitterConfiguration:
    """Settings of the emitter that :meth:`Snowplow.create_tracker` builds.

    The positional parameters are those of snowplow-tracker 1.1.0, in the same order; the
    keyword-only ones are additions. Every setting is a read/write property, validated when
    set.

    Args:
        batch_size: Events buffered before a send (default: 10 for POST, 1 for GET).
        on_success: Called with the list of event dicts the collector accepted.
        on_failure: Called with the number of accepted events and the list of event dicts
            that were not accepted.
        byte_limit: Send once the buffered events reach this size.
        request_timeout: Seconds, or a ``(connect, read)`` pair, for each request.
        buffer_capacity: Most events held in the default in-memory store.
        custom_retry_codes: ``{status_code: retry?}`` overrides; a new dict when ``None``.
        event_store: Where events wait until they are sent.
        session: A ``requests.Session`` to send with.
        max_retry_delay_seconds: Cap on the backoff between retries (default 60).
        protocol: ``"http"`` or ``"https"``; ``None`` keeps the emitter's own default.
        port: Collector port; ``None`` uses the scheme's default.
        thread_count: Sender threads of an asynchronous emitter (default 1).
        asynchronous: Build an ``AsyncEmitter`` (sends in the background) instead of an
            ``Emitter`` (sends in the tracking thread).
        retry_policy: A ``RetryPolicy`` replacing the one built from
            ``max_retry_delay_seconds``.
        overflow_policy: What to do when the buffer is full: ``"drop_newest"`` (default),
            ``"drop_oldest"`` or ``"block"``.
        block_timeout: Longest wait in seconds of the ``"block"`` policy.
        on_drop: Called with events dropped before any attempt, and the reason.
        exit_timeout: Seconds the emitter may spend sending what is left at interpreter
            exit (0 disables it).

    Raises:
        ValueError: If a count or choice is out of range.
        TypeError: If a setting has the wrong type.
    """

    def __init__(
        self,
        batch_size: Optional[int] = None,
        on_success: Optional[SuccessCallback] = None,
        on_failure: Optional[FailureCallback] = None,
        byte_limit: Optional[int] = None,
        request_timeout: Optional[RequestTimeout] = None,
        buffer_capacity: Optional[int] = None,
        custom_retry_codes: Optional[Dict[int, bool]] = None,
        event_store: Optional[EventStore] = None,
        session: Optional[requests.Session] = None,
        *,
        max_retry_delay_seconds: int = 60,
        protocol: Optional[str] = None,
        port: Optional[int] = None,
        thread_count: int = 1,
        asynchronous: bool = False,
        retry_policy: Optional[RetryPolicy] = None,
        overflow_policy: str = "drop_newest",
        block_timeout: float = 1.0,
        on_drop: Optional[DropCallback] = None,
        exit_timeout: float = 2.0,
    ) -> None:
        self.batch_size = batch_size
        self.on_success = on_success
        self.on_failure = on_failure
        self.byte_limit = byte_limit
        self.request_timeout = request_timeout
        self.buffer_capacity = buffer_capacity
        self.custom_retry_codes = custom_retry_codes
        self.event_store = event_store
        self.session = session
        self.max_retry_delay_seconds = max_retry_delay_seconds
        self.protocol = protocol
        self.port = port
        self.thread_count = thread_count
        self.asynchronous = asynchronous
        self.retry_policy = retry_policy
        self.overflow_policy = overflow_policy
        self.block_timeout = block_timeout
        self.on_drop = on_drop
        self.exit_timeout = exit_timeout

    # ------------------------------------------------------------------ 1.1.0 settings

    @property
    def batch_size(self) -> Optional[int]:
        """Events buffered before a send; ``None`` for the emitter's default."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: Optional[int]) -> None:
        _check_count("batch_size", value)
        self._batch_size = value

    @property
    def on_success(self) -> Optional[SuccessCallback]:
        """Called with the list of event dicts that a send delivered (any 2xx status)."""
        return self._on_success

    @on_success.setter
    def on_success(self, value: Optional[SuccessCallback]) -> None:
        _check_callback("on_success", value)
        self._on_success = value

    @property
    def on_failure(self) -> Optional[FailureCallback]:
        """Called with the number of delivered events and the list of failed event dicts."""
        return self._on_failure

    @on_failure.setter
    def on_failure(self, value: Optional[FailureCallback]) -> None:
        _check_callback("on_failure", value)
        self._on_failure = value

    @property
    def byte_limit(self) -> Optional[int]:
        """Buffered size that triggers a send; ``None`` for no size limit."""
        return self._byte_limit

    @byte_limit.setter
    def byte_limit(self, value: Optional[int]) -> None:
        _check_count("byte_limit", value)
        self._byte_limit = value

    @property
    def request_timeout(self) -> Optional[RequestTimeout]:
        """Timeout of each request in seconds, or a ``(connect, read)`` pair."""
        return self._request_timeout

    @request_timeout.setter
    def request_timeout(self, value: Optional[RequestTimeout]) -> None:
        if value is not None:
            parts = value if isinstance(value, tuple) else (value,)
            if isinstance(value, tuple) and len(value) != 2:
                raise TypeError("request_timeout must be a number or a (connect, read) pair.")
            for part in parts:
                if not _is_number(part):
                    raise TypeError(
                        "request_timeout must be a number or a (connect, read) pair, "
                        f"not {value!r}."
                    )
                if not part > 0:
                    raise ValueError(f"request_timeout must be greater than 0, not {value!r}.")
        self._request_timeout = value

    @property
    def buffer_capacity(self) -> Optional[int]:
        """Most events held in the default in-memory store; ``None`` for 10,000."""
        return self._buffer_capacity

    @buffer_capacity.setter
    def buffer_capacity(self, value: Optional[int]) -> None:
        _check_count("buffer_capacity", value)
        self._buffer_capacity = value

    @property
    def custom_retry_codes(self) -> Dict[int, bool]:
        """``{status_code: retry?}`` overrides of the retry decision (the same dict object)."""
        return self._custom_retry_codes

    @custom_retry_codes.setter
    def custom_retry_codes(self, value: Optional[Dict[int, bool]]) -> None:
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            raise TypeError(f"custom_retry_codes must be a dict, not {type(value).__name__}.")
        self._custom_retry_codes = value

    @property
    def event_store(self) -> Optional[EventStore]:
        """Where events wait until sent; ``None`` for a new in-memory store."""
        return self._event_store

    @event_store.setter
    def event_store(self, value: Optional[EventStore]) -> None:
        if value is not None:
            missing = [m for m in _EVENT_STORE_METHODS if not hasattr(value, m)]
            if missing:
                raise TypeError(
                    f"event_store must implement the EventStore methods; "
                    f"{type(value).__name__} lacks {', '.join(missing)}."
                )
        self._event_store = value

    @property
    def session(self) -> Optional[requests.Session]:
        """The ``requests.Session`` used to send, or ``None``."""
        return self._session

    @session.setter
    def session(self, value: Optional[requests.Session]) -> None:
        self._session = value

    def set_retry_code(self, status_code: int, retry: bool = True) -> bool:
        """Choose whether a status code is retried.

        Problems are reported through the ``snowplow_tracker.emitter_configuration``
        logger at WARNING level.

        Args:
            status_code: An HTTP status code other than 2xx.
            retry: Whether to retry events that got this code.

        Returns:
            True if the code was recorded; False if the code is not an int, is a 2xx
            code, or ``retry`` is not a bool.
        """
        if not isinstance(status_code, int) or isinstance(status_code, bool):
            logger.warning(
                "set_retry_code: status_code must be an int, not %s", type(status_code).__name__
            )
            return False
        if not isinstance(retry, bool):
            logger.warning("set_retry_code: retry must be a bool, not %s", type(retry).__name__)
            return False
        if 200 <= status_code < 300:
            logger.warning(
                "set_retry_code: %s is a success code; success codes are never retried",
                status_code,
            )
            return False
        self._custom_retry_codes[status_code] = retry
        return True

    # ------------------------------------------------------------------ additions

    @property
    def max_retry_delay_seconds(self) -> int:
        """Cap, in seconds, on the backoff between retries (default 60)."""
        return self._max_retry_delay_seconds

    @max_retry_delay_seconds.setter
    def max_retry_delay_seconds(self, value: int) -> None:
        _check_seconds("max_retry_delay_seconds", value)
        self._max_retry_delay_seconds = value

    @property
    def protocol(self) -> Optional[str]:
        """``"http"`` or ``"https"``; ``None`` keeps the emitter's default."""
        return self._protocol

    @protocol.setter
    def protocol(self, value: Optional[str]) -> None:
        if value is not None and value not in PROTOCOLS:
            raise ValueError(f"protocol must be 'http', 'https' or None, not {value!r}.")
        self._protocol = value

    @property
    def port(self) -> Optional[int]:
        """Collector port (1-65535); ``None`` for the scheme's default."""
        return self._port

    @port.setter
    def port(self, value: Optional[int]) -> None:
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"port must be an int or None, not {type(value).__name__}.")
            if not 0 < value < 65536:
                raise ValueError(f"port must be between 1 and 65535, not {value!r}.")
        self._port = value

    @property
    def thread_count(self) -> int:
        """Sender threads of an asynchronous emitter (at least 1)."""
        return self._thread_count

    @thread_count.setter
    def thread_count(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"thread_count must be an int, not {type(value).__name__}.")
        if value < 1:
            raise ValueError(f"thread_count must be at least 1, not {value!r}.")
        self._thread_count = value

    @property
    def asynchronous(self) -> bool:
        """Whether ``create_tracker`` builds an ``AsyncEmitter`` (default ``False``)."""
        return self._asynchronous

    @asynchronous.setter
    def asynchronous(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"asynchronous must be a bool, not {type(value).__name__}.")
        self._asynchronous = value

    @property
    def retry_policy(self) -> Optional[RetryPolicy]:
        """A ``RetryPolicy`` for the emitter, or ``None`` for the default policy."""
        return self._retry_policy

    @retry_policy.setter
    def retry_policy(self, value: Optional[RetryPolicy]) -> None:
        self._retry_policy = value

    @property
    def overflow_policy(self) -> str:
        """``"drop_newest"``, ``"drop_oldest"`` or ``"block"``: what a full buffer does."""
        return self._overflow_policy

    @overflow_policy.setter
    def overflow_policy(self, value: str) -> None:
        if value not in OVERFLOW_POLICIES:
            raise ValueError(
                f"overflow_policy must be one of {', '.join(OVERFLOW_POLICIES)}, not {value!r}."
            )
        self._overflow_policy = value

    @property
    def block_timeout(self) -> float:
        """Longest wait, in seconds, of the ``"block"`` overflow policy (default 1.0)."""
        return self._block_timeout

    @block_timeout.setter
    def block_timeout(self, value: float) -> None:
        _check_seconds("block_timeout", value)
        self._block_timeout = value

    @property
    def on_drop(self) -> Optional[DropCallback]:
        """Called with the events dropped before any attempt and the reason, or ``None``."""
        return self._on_drop

    @on_drop.setter
    def on_drop(self, value: Optional[DropCallback]) -> None:
        _check_callback("on_drop", value)
        self._on_drop = value

    @property
    def exit_timeout(self) -> float:
        """Seconds the emitter may spend sending leftovers at interpreter exit (default 2)."""
        return self._exit_timeout

    @exit_timeout.setter
    def exit_timeout(self, value: float) -> None:
        _check_seconds("exit_timeout", value)
        self._exit_timeout = value
