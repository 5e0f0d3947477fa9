"""Page view events (``e=pv``)."""

from __future__ import annotations

from typing import Iterable, Optional, cast

from snowplow_tracker.contracts import non_empty_string
from snowplow_tracker.events.event import Event, _init_event, _payload_of, _set_field
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject


class PageView(Event):
    """A page view.

    Args:
        page_url: URL of the page (``url``), a non-empty string.
        page_title: Title of the page (``page``).
        referrer: URL of the referring page (``refr``).
        event_subject: A subject merged over the tracker's subject for this event.
        context: Context entities.
        true_timestamp: The user-defined event time in milliseconds.

    Raises:
        ValueError: If ``page_url`` is empty (while contracts are enabled).
    """

    def __init__(
        self,
        page_url: str,
        page_title: Optional[str] = None,
        referrer: Optional[str] = None,
        event_subject: Optional[Subject] = None,
        context: Optional[Iterable[SelfDescribingJson]] = None,
        true_timestamp: Optional[float] = None,
    ) -> None:
        non_empty_string(page_url, name="page_url")
        # The pairs the property setters would store, in their order, in one step.
        pairs = {"e": "pv", "url": page_url, "page": page_title, "refr": referrer}
        _init_event(self, _payload_of(pairs), event_subject, context, true_timestamp)

    @property
    def page_url(self) -> str:
        """URL of the page (``url``)."""
        return cast(str, self.payload.nv_pairs.get("url"))

    @page_url.setter
    def page_url(self, value: str) -> None:
        non_empty_string(value, name="page_url")
        _set_field(self, "url", value)

    @property
    def page_title(self) -> Optional[str]:
        """Title of the page (``page``); setting ``None`` removes it."""
        return cast(Optional[str], self.payload.nv_pairs.get("page"))

    @page_title.setter
    def page_title(self, value: Optional[str]) -> None:
        _set_field(self, "page", value)

    @property
    def referrer(self) -> Optional[str]:
        """URL of the referrer (``refr``); setting ``None`` removes it."""
        return cast(Optional[str], self.payload.nv_pairs.get("refr"))

    @referrer.setter
    def referrer(self, value: Optional[str]) -> None:
        _set_field(self, "refr", value)
