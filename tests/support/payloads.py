"""Event payloads for delivery tests, as a tracker hands them to ``Emitter.input``."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict


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
