"""Screen view events of mobile apps (a self-describing event)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, cast

from snowplow_tracker.constants import MOBILE_SCHEMA_PATH, SCHEMA_TAG
from snowplow_tracker.contracts import non_empty_string
from snowplow_tracker.events.event import Event, _init_event
from snowplow_tracker.events.self_describing import SelfDescribing
from snowplow_tracker.payload import Payload
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject
from snowplow_tracker.typing import JsonEncoderFunction

SCREEN_VIEW_SCHEMA = f"{MOBILE_SCHEMA_PATH}/screen_view/{SCHEMA_TAG}/1-0-0"
"""Schema of the mobile screen view event."""


class ScreenView(Event):
    """A screen view in a mobile app, sent as a self-describing event.

    The fields live in ``screen_view_properties`` under the schema's key names; this
    event's own ``payload`` stays empty. Optional fields are omitted while ``None``.

    Args:
        id_: ID of the screen (``id``, a non-empty string, usually a UUID).
        name: Name of the screen (``name``, a non-empty string).
        type: Type of the screen (``type``).
        previous_name: Name of the previous screen (``previousName``).
        previous_id: ID of the previous screen (``previousId``).
        previous_type: Type of the previous screen (``previousType``).
        transition_type: Type of the transition (``transitionType``).
        event_subject: A subject merged over the tracker's subject for this event.
        context: Context entities.
        true_timestamp: The user-defined event time in milliseconds.

    Raises:
        ValueError: If ``id_`` or ``name`` is empty (while contracts are enabled).

    Attributes:
        screen_view_properties: The event data under the schema's key names (``id``,
            ``name``, ``previousName``, ...).
    """

    def __init__(
        self,
        id_: str,
        name: str,
        type: Optional[str] = None,
        previous_name: Optional[str] = None,
        previous_id: Optional[str] = None,
        previous_type: Optional[str] = None,
        transition_type: Optional[str] = None,
        event_subject: Optional[Subject] = None,
        context: Optional[Iterable[SelfDescribingJson]] = None,
        true_timestamp: Optional[float] = None,
    ) -> None:
        non_empty_string(id_, name="id_")
        non_empty_string(name, name="name")
        _init_event(self, Payload(), event_subject, context, true_timestamp)
        # What the property setters store, in their order, through their rule (_store).
        self.screen_view_properties: Dict[str, Any] = {}
        for key, value in (
            ("id", id_),
            ("name", name),
            ("type", type),
            ("previousName", previous_name),
            ("previousId", previous_id),
            ("previousType", previous_type),
            ("transitionType", transition_type),
        ):
            self._store(key, value)

    def _store(self, key: str, value: Any) -> None:
        """Store an optional field, or remove it for ``None``."""
        if value is None:
            self.screen_view_properties.pop(key, None)
        else:
            self.screen_view_properties[key] = value

    @property
    def id_(self) -> str:
        """ID of the screen (``id``)."""
        return cast(str, self.screen_view_properties.get("id"))

    @id_.setter
    def id_(self, value: str) -> None:
        non_empty_string(value, name="id_")
        self._store("id", value)

    @property
    def name(self) -> str:
        """Name of the screen (``name``)."""
        return cast(str, self.screen_view_properties.get("name"))

    @name.setter
    def name(self, value: str) -> None:
        non_empty_string(value, name="name")
        self._store("name", value)

    @property
    def type(self) -> Optional[str]:
        """Type of the screen (``type``), or ``None``."""
        return cast(Optional[str], self.screen_view_properties.get("type"))

    @type.setter
    def type(self, value: Optional[str]) -> None:
        self._store("type", value)

    @property
    def previous_name(self) -> Optional[str]:
        """Name of the previous screen (``previousName``), or ``None``."""
        return cast(Optional[str], self.screen_view_properties.get("previousName"))

    @previous_name.setter
    def previous_name(self, value: Optional[str]) -> None:
        self._store("previousName", value)

    @property
    def previous_id(self) -> Optional[str]:
        """ID of the previous screen (``previousId``), or ``None``."""
        return cast(Optional[str], self.screen_view_properties.get("previousId"))

    @previous_id.setter
    def previous_id(self, value: Optional[str]) -> None:
        self._store("previousId", value)

    @property
    def previous_type(self) -> Optional[str]:
        """Type of the previous screen (``previousType``), or ``None``."""
        return cast(Optional[str], self.screen_view_properties.get("previousType"))

    @previous_type.setter
    def previous_type(self, value: Optional[str]) -> None:
        self._store("previousType", value)

    @property
    def transition_type(self) -> Optional[str]:
        """Type of the transition between screens (``transitionType``), or ``None``."""
        return cast(Optional[str], self.screen_view_properties.get("transitionType"))

    @transition_type.setter
    def transition_type(self, value: Optional[str]) -> None:
        self._store("transitionType", value)

    def build_payload(
        self,
        encode_base64: bool,
        json_encoder: Optional[JsonEncoderFunction],
        subject: Optional[Subject] = None,
    ) -> Payload:
        """Build the payload of the equivalent :class:`SelfDescribing` event.

        Args:
            encode_base64: Whether JSON fields are base64-encoded.
            json_encoder: ``default=`` hook for the JSON serialisation.
            subject: The tracker's subject.

        Returns:
            A new payload (``e=ue`` with the mobile ``screen_view`` 1-0-0 event).
        """
        event = SelfDescribing(
            SelfDescribingJson(SCREEN_VIEW_SCHEMA, dict(self.screen_view_properties)),
            self._event_subject,
            self._context,
            self._true_timestamp,
        )
        return event.build_payload(encode_base64, json_encoder, subject)
