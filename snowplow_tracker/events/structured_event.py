"""Structured events (``e=se``): category/action/label/property/value."""

from __future__ import annotations

from typing import Iterable, Optional, Union, cast

from snowplow_tracker.contracts import non_empty_string
from snowplow_tracker.events.event import Event, _init_event, _payload_of, _set_field
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject


class StructuredEvent(Event):
    """A structured event in the Google Analytics style.

    Args:
        category: Category of the event (``se_ca``), a non-empty string.
        action: The action performed (``se_ac``), a non-empty string.
        label: A label (``se_la``).
        property_: A property (``se_pr``).
        value: A numeric value (``se_va``); ``0`` is kept.
        event_subject: A subject merged over the tracker's subject for this event.
        context: Context entities.
        true_timestamp: The user-defined event time in milliseconds.

    Raises:
        ValueError: If ``category`` or ``action`` is empty (while contracts are enabled).
    """

    def __init__(
        self,
        category: str,
        action: str,
        label: Optional[str] = None,
        property_: Optional[str] = None,
        value: Optional[Union[int, float]] = None,
        event_subject: Optional[Subject] = None,
        context: Optional[Iterable[SelfDescribingJson]] = None,
        true_timestamp: Optional[float] = None,
    ) -> None:
        non_empty_string(category, name="category")
        non_empty_string(action, name="action")
        # The pairs the property setters would store, in their order, in one step.
        pairs = {
            "e": "se",
            "se_ca": category,
            "se_ac": action,
            "se_la": label,
            "se_pr": property_,
            "se_va": value,
        }
        _init_event(self, _payload_of(pairs), event_subject, context, true_timestamp)

    @property
    def category(self) -> str:
        """Category of the event (``se_ca``)."""
        return cast(str, self.payload.nv_pairs.get("se_ca"))

    @category.setter
    def category(self, value: str) -> None:
        non_empty_string(value, name="category")
        _set_field(self, "se_ca", value)

    @property
    def action(self) -> str:
        """The action performed (``se_ac``)."""
        return cast(str, self.payload.nv_pairs.get("se_ac"))

    @action.setter
    def action(self, value: str) -> None:
        non_empty_string(value, name="action")
        _set_field(self, "se_ac", value)

    @property
    def label(self) -> Optional[str]:
        """Label of the event (``se_la``); setting ``None`` removes it."""
        return cast(Optional[str], self.payload.nv_pairs.get("se_la"))

    @label.setter
    def label(self, value: Optional[str]) -> None:
        _set_field(self, "se_la", value)

    @property
    def property_(self) -> Optional[str]:
        """Property of the event (``se_pr``); setting ``None`` removes it."""
        return cast(Optional[str], self.payload.nv_pairs.get("se_pr"))

    @property_.setter
    def property_(self, value: Optional[str]) -> None:
        _set_field(self, "se_pr", value)

    @property
    def value(self) -> Optional[Union[int, float]]:
        """Numeric value of the event (``se_va``); setting ``None`` removes it."""
        return cast(Optional[Union[int, float]], self.payload.nv_pairs.get("se_va"))

    @value.setter
    def value(self, value: Optional[Union[int, float]]) -> None:
        _set_field(self, "se_va", value)
