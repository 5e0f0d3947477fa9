"""Self-describing events (``e=ue``): custom events with an Iglu schema."""

from __future__ import annotations

from typing import Iterable, Optional

from snowplow_tracker.constants import UNSTRUCT_EVENT_SCHEMA
from snowplow_tracker.events.event import Event, _init_event, _payload_of
from snowplow_tracker.payload import Payload
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject
from snowplow_tracker.typing import JsonEncoderFunction


class SelfDescribing(Event):
    """A custom event described by a JSON schema.

    The event JSON is wrapped in the ``unstruct_event`` 1-0-0 envelope and sent as
    ``ue_px`` (base64) or ``ue_pr`` (raw JSON).

    Args:
        event_json: The event's schema and data.
        event_subject: A subject merged over the tracker's subject for this event.
        context: Context entities.
        true_timestamp: The user-defined event time in milliseconds.
    """

    def __init__(
        self,
        event_json: SelfDescribingJson,
        event_subject: Optional[Subject] = None,
        context: Optional[Iterable[SelfDescribingJson]] = None,
        true_timestamp: Optional[float] = None,
    ) -> None:
        _init_event(self, _payload_of({"e": "ue"}), event_subject, context, true_timestamp)
        self._event_json = event_json

    @property
    def event_json(self) -> SelfDescribingJson:
        """The event's schema and data."""
        return self._event_json

    @event_json.setter
    def event_json(self, value: SelfDescribingJson) -> None:
        self._event_json = value

    def _add_event_json(
        self,
        payload: Payload,
        encode_base64: bool,
        json_encoder: Optional[JsonEncoderFunction],
    ) -> None:
        """Add the ``ue_px``/``ue_pr`` envelope of the event JSON."""
        event_json = self._event_json
        try:
            data = event_json.to_json()
        except AttributeError:
            if not hasattr(event_json, "to_json"):
                raise TypeError(
                    f"event_json must be a SelfDescribingJson, not {type(event_json).__name__}."
                ) from None
            raise
        payload.add_json(
            {"schema": UNSTRUCT_EVENT_SCHEMA, "data": data},
            encode_base64,
            "ue_px",
            "ue_pr",
            json_encoder,
        )
