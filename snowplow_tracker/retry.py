"""The retry policy of the emitters, as one immutable value.

A :class:`RetryPolicy` answers three questions for an emitter: is this response worth
retrying, how long to wait before the next attempt, and when to give up on an event. The
defaults reproduce snowplow-tracker 1.1.0 (never retry 400, 401, 403, 410 and 422, retry
everything else forever with a jittered exponential delay capped at 60 seconds), and add what
1.1.0 lacked: ``Retry-After`` honoured on 429 and 503, and optional caps on attempts and on
the total time an event may spend being retried.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field, replace
from typing import FrozenSet, Mapping, Optional

DEFAULT_NON_RETRY_CODES: FrozenSet[int] = frozenset({400, 401, 403, 410, 422})
"""Status codes that 1.1.0 never retries (unless ``custom_retry_codes`` says otherwise)."""

RETRY_AFTER_CODES: FrozenSet[int] = frozenset({429, 503})
"""Status codes whose ``Retry-After`` header is honoured."""

NETWORK_ERROR = -1
"""Status reported by ``http_post``/``http_get`` when the request did not get a response."""

MIN_RETRY_DELAY = 0.05
"""Shortest wait, in seconds, between two attempts at failed events: even with
``max_delay=0`` a failing collector is never retried in a busy loop.
"""


@dataclass(frozen=True)
class RetryPolicy:
    """When and how an emitter retries events that the collector did not accept.

    Args:
        max_delay: Upper bound of the backoff delay, in seconds (1.1.0's
            ``max_retry_delay_seconds``, default 60).
        custom_retry_codes: Per-status overrides: ``{code: True}`` retries ``code``,
            ``{code: False}`` never does. 2xx codes are never retried.
        non_retry_codes: Codes that are not retried unless overridden.
        max_attempts: Give an event up (report it as failed) after this many attempts.
            ``None`` (default, as 1.1.0) retries without limit.
        max_retry_time: Give an event up once this many seconds have passed since its first
            failed attempt. ``None`` (default) means no limit.
        honor_retry_after: Wait at least the ``Retry-After`` the collector sent with a 429
            or 503 before the next attempt.
        max_retry_after: Upper bound on a ``Retry-After`` wait, in seconds.
    """

    max_delay: float = 60.0
    custom_retry_codes: Mapping[int, bool] = field(default_factory=dict)
    non_retry_codes: FrozenSet[int] = DEFAULT_NON_RETRY_CODES
    max_attempts: Optional[int] = None
    max_retry_time: Optional[float] = None
    honor_retry_after: bool = True
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_delay, (int, float)) or self.max_delay < 0:
            raise ValueError("max_delay must be a number >= 0")
        if self.max_attempts is not None and (
            not isinstance(self.max_attempts, int) or self.max_attempts < 1
        ):
            raise ValueError("max_attempts must be None or an int >= 1")
        if self.max_retry_time is not None and self.max_retry_time < 0:
            raise ValueError("max_retry_time must be None or a number >= 0")
        # Freeze a private copy so later changes to the caller's dict do not leak in.
        object.__setattr__(self, "custom_retry_codes", dict(self.custom_retry_codes))

    def with_changes(self, **changes: object) -> RetryPolicy:
        """Return a copy of this policy with some fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @staticmethod
    def is_success(status_code: int) -> bool:
        """True for 2xx codes."""
        return 200 <= status_code < 300

    def should_retry(self, status_code: int) -> bool:
        """Whether events that got ``status_code`` (``-1``: no response) are retried."""
        if self.is_success(status_code):
            return False
        override = self.custom_retry_codes.get(status_code)
        if override is not None:
            return bool(override)
        return status_code not in self.non_retry_codes

    def next_delay(self, previous_delay: float) -> float:
        """Backoff after ``previous_delay`` seconds: ``min(2 * previous + U(0, 1), max_delay)``,
        and never less than :data:`MIN_RETRY_DELAY`."""
        delay = min(previous_delay * 2 + random.random(), float(self.max_delay))
        return max(delay, MIN_RETRY_DELAY)

    def retry_after_delay(self, status_code: int, header: Optional[str]) -> Optional[float]:
        """Seconds the collector asked us to wait, from a ``Retry-After`` header, if honoured."""
        if not self.honor_retry_after or status_code not in RETRY_AFTER_CODES or not header:
            return None
        seconds = parse_retry_after(header)
        if seconds is None:
            return None
        return min(max(seconds, 0.0), self.max_retry_after)

    def gives_up(self, attempts: int, first_failure: float, now: float) -> bool:
        """Whether to give up an event that failed ``attempts`` times since ``first_failure``."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return self.max_retry_time is not None and now - first_failure >= self.max_retry_time


def parse_retry_after(value: str) -> Optional[float]:
    """Parse a ``Retry-After`` value (delay-seconds or an HTTP date) into seconds from now."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed.timestamp() - time.time()
