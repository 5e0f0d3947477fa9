"""Event stores (placeholder while the real implementation is written)."""

from __future__ import annotations

from typing import Any, Dict, List

from typing_extensions import Protocol


class EventStore(Protocol):
    """Where an emitter keeps events until they are sent."""

    def add_event(self, payload: Dict[str, Any]) -> bool: ...
    def get_events_batch(self) -> List[Dict[str, Any]]: ...
    def cleanup(self, batch: List[Dict[str, Any]], need_retry: bool) -> None: ...
    def size(self) -> int: ...


class InMemoryEventStore:
    """Placeholder."""
