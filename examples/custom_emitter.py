"""Two ways to change how events leave the tracker.

Run: python examples/custom_emitter.py

1. A custom emitter: any object with an ``input(payload)`` method. The tracker calls it
   once per event with a fresh dict. ``RecordingEmitter`` below keeps the events in a list,
   which is handy in unit tests and for debugging.
2. An ``Emitter`` subclass that overrides ``http_post``, the seam snowplow-tracker 1.1.0
   users already rely on. ``SignedEmitter`` adds an HMAC signature header to every POST.
   It keeps everything else of ``Emitter``: batching, retries, callbacks, the exit drain.

The last line printed is a JSON summary that the repository's tests check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Dict, List

import requests

from snowplow_tracker import Emitter, PageView, StructuredEvent, Tracker
from snowplow_tracker.collector import LocalCollector


class RecordingEmitter:
    """Keeps every event it is given. ``input`` is the only method a tracker requires."""

    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []

    def input(self, payload: Dict[str, Any]) -> None:
        self.events.append(payload)

    def flush(self) -> None:
        """Optional: called by ``tracker.flush()``; nothing is buffered here."""


class SignedEmitter(Emitter):
    """An ``Emitter`` whose POST requests carry an ``X-Signature`` header."""

    def __init__(self, endpoint: str, secret: bytes, **kwargs: Any) -> None:
        super().__init__(endpoint, **kwargs)
        self.secret = secret
        self.http = requests.Session()

    def http_post(self, data: str) -> int:
        """Send one POST body; return the status code, or -1 when there was no response."""
        signature = hmac.new(self.secret, data.encode("utf-8"), hashlib.sha256).hexdigest()
        try:
            response = self.http.post(
                self.endpoint,  # the full collector URL, built by Emitter
                data=data,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "X-Signature": signature,
                },
                timeout=5,
            )
        except requests.RequestException:
            return -1  # counts as a network error: the events are retried later
        return response.status_code


def main() -> None:
    secret = b"not-a-real-secret"
    with LocalCollector() as collector:
        recorder = RecordingEmitter()
        signed = SignedEmitter(collector.endpoint, secret, batch_size=5)
        tracker = Tracker("custom", emitters=[recorder, signed], app_id="custom-emitters")

        tracker.track(PageView(page_url="https://example.com/pricing"))
        tracker.track(StructuredEvent(category="pricing", action="toggle", label="yearly"))
        # force_flush works with both: SignedEmitter inherits force_flush; RecordingEmitter
        # has only flush(), which is called instead.
        tracker.force_flush(timeout=5)

        collector.wait_for(2, timeout=5)
        request = collector.requests()[0]
        header = request["headers"].get("X-Signature")
        expected = hmac.new(secret, request["body"], hashlib.sha256).hexdigest()
        print(f"RecordingEmitter holds {len(recorder.events)} events; first event's keys:")
        print(f"  {sorted(recorder.events[0])}")
        print(f"SignedEmitter: {collector.summary()}, signature valid: {header == expected}")
        result = {
            "example": "custom_emitter",
            **collector.summary(),
            "recorded_event_ids": [event["eid"] for event in recorder.events],
            "arrived_event_ids": collector.event_ids(),
            "signature_valid": header == expected,
        }
        tracker.shutdown(timeout=5)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
