"""Event payloads for delivery tests, as a tracker hands them to ``Emitter.input``."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List


def event(**extra: Any) -> Dict[str, Any]:
    """A minimal valid structured event with a fresh ``eid``; ``extra`` adds or replaces keys."""
    payload: Dict[str, Any] = {
        "e": "se",
        "se_ca": "cat",
        "se_ac": "act",
        "p": "srv",
        "eid": str(uuid.uuid4()),
        "dtm": int(time.time() * 1000),
        "tv": "py-test",
        "tna": "ns",
    }
    payload.update(extra)
    return payload


def fill(store: Any, count: int, **extra: Any) -> List[str]:
    """Add ``count`` events (see :func:`event`) to ``store`` as an emitter keeps them
    (string values); return their ids in order."""
    ids = []
    for _ in range(count):
        payload = event(**extra)
        assert store.add_event({key: str(value) for key, value in payload.items()})
        ids.append(payload["eid"])
    return ids
