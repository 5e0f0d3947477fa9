"""Fault injection for the local collector: failing statuses, delays and dropped connections.

Faults apply to tracking requests only (``/i``, ``/ice.png``, ``/<vendor>/<version>``), never
to ``/micro/*``, ``/health`` or CORS preflights, so tests can keep inspecting the collector
while it misbehaves. Each tracking request takes at most one delay and one failure (a dropped
connection wins over a failing status); rules of the same kind are used in the order they
were added.
"""

from __future__ import annotations

import random
import threading
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

__all__ = ["DROP_MODES", "NO_FAULT", "FaultDecision", "FaultPlan"]

#: ``close``: read the request, close without answering; ``reset``: same but with a TCP
#: reset; ``partial``: send the start of a response, then reset.
DROP_MODES = ("close", "reset", "partial")


class FaultDecision(NamedTuple):
    """What to do with one tracking request."""

    delay: float = 0.0
    drop: Optional[str] = None
    status: Optional[int] = None
    headers: Tuple[Tuple[str, str], ...] = ()
    body: bytes = b""
    store: bool = True

    @property
    def active(self) -> bool:
        """True when the request is failed or dropped (not just delayed)."""
        return self.drop is not None or self.status is not None


#: The decision for a request without any fault (shared, immutable).
NO_FAULT = FaultDecision()


class _Rule:
    __slots__ = (
        "body",
        "drop",
        "fraction",
        "headers",
        "remaining",
        "rng",
        "seconds",
        "status",
        "store",
    )

    def __init__(
        self,
        remaining: Optional[int],
        *,
        status: Optional[int] = None,
        headers: Tuple[Tuple[str, str], ...] = (),
        body: bytes = b"",
        store: bool = False,
        drop: Optional[str] = None,
        seconds: float = 0.0,
        fraction: Optional[float] = None,
        seed: Optional[int] = None,
    ) -> None:
        self.remaining = remaining
        self.status = status
        self.headers = headers
        self.body = body
        self.store = store
        self.drop = drop
        self.seconds = seconds
        self.fraction = fraction
        self.rng = random.Random(seed) if fraction is not None else None

    def take(self) -> Optional[bool]:
        """Consume one request: True = apply, False = skip (fraction miss), None = exhausted."""
        if self.remaining is not None and self.remaining <= 0:
            return None
        if self.remaining is not None:
            self.remaining -= 1
        if self.rng is not None and self.fraction is not None:
            return self.rng.random() < self.fraction
        return True


def _check_count(count: Optional[int]) -> None:
    if count is not None and count < 0:
        raise ValueError("count must be >= 0")


class FaultPlan:
    """Thread-safe queue of fault rules consumed by incoming tracking requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delays: List[_Rule] = []
        self._drops: List[_Rule] = []
        self._failures: List[_Rule] = []

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        *,
        body: bytes = b"",
        store: bool = False,
    ) -> None:
        """Answer the next ``count`` tracking requests with ``status`` (and ``headers``).

        Their events are not stored unless ``store`` is true.
        """
        _check_count(count)
        rule = _Rule(
            count, status=status, headers=tuple((headers or {}).items()), body=body, store=store
        )
        with self._lock:
            self._failures.append(rule)

    def fail_fraction(
        self,
        fraction: float,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        *,
        seed: Optional[int] = 0,
        requests: Optional[int] = None,
        body: bytes = b"",
        store: bool = False,
    ) -> None:
        """Fail each tracking request with probability ``fraction`` (seeded, reproducible).

        Applies to the next ``requests`` requests, or until ``clear()`` when ``None``.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        _check_count(requests)
        rule = _Rule(
            requests,
            status=status,
            headers=tuple((headers or {}).items()),
            body=body,
            store=store,
            fraction=fraction,
            seed=seed,
        )
        with self._lock:
            self._failures.append(rule)

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Wait ``seconds`` before answering each of the next ``count`` tracking requests."""
        _check_count(count)
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._delays.append(_Rule(count, seconds=seconds))

    def drop_next(self, count: int = 1, *, mode: str = "close", store: bool = False) -> None:
        """Drop the connection of the next ``count`` tracking requests after reading them.

        ``mode`` is one of ``DROP_MODES``; events are not stored unless ``store`` is true.
        """
        _check_count(count)
        if mode not in DROP_MODES:
            raise ValueError(f"mode must be one of {DROP_MODES}")
        with self._lock:
            self._drops.append(_Rule(count, drop=mode, store=store))

    def clear(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._delays.clear()
            self._drops.clear()
            self._failures.clear()

    def pending(self) -> Dict[str, int]:
        """Number of pending rules of each kind."""
        with self._lock:
            self._prune()
            return {
                "delays": len(self._delays),
                "drops": len(self._drops),
                "failures": len(self._failures),
            }

    def _prune(self) -> None:
        for rules in (self._delays, self._drops, self._failures):
            rules[:] = [r for r in rules if r.remaining is None or r.remaining > 0]

    @staticmethod
    def _take(rules: List[_Rule]) -> Optional[_Rule]:
        while rules:
            outcome = rules[0].take()
            if outcome is None:
                rules.pop(0)
                continue
            return rules[0] if outcome else None
        return None

    def decide(self) -> FaultDecision:
        """Consume the rules for one incoming tracking request (``NO_FAULT`` when none)."""
        if not (self._delays or self._drops or self._failures):
            return NO_FAULT  # nothing armed: no lock needed for the common case
        with self._lock:
            if not (self._delays or self._drops or self._failures):
                return NO_FAULT
            delay_rule = self._take(self._delays)
            delay = delay_rule.seconds if delay_rule is not None else 0.0
            drop_rule = self._take(self._drops)
            if drop_rule is not None:
                return FaultDecision(delay=delay, drop=drop_rule.drop, store=drop_rule.store)
            fail_rule = self._take(self._failures)
            if fail_rule is not None:
                return FaultDecision(
                    delay=delay,
                    status=fail_rule.status,
                    headers=fail_rule.headers,
                    body=fail_rule.body,
                    store=fail_rule.store,
                )
            return FaultDecision(delay=delay)
