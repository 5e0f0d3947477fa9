"""Page ping events (``e=pp``): the user is still on the page."""

from __future__ import annotations

from typing import Iterable, Optional, cast

from snowplow_tracker.contracts import non_empty_string
from snowplow_tracker.events.event import Event, _set_field
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject


class PagePing(Event):
    """A page ping, with the page's scroll extent since the last ping.

    Args:
        page_url: URL of the page (``url``), a non-empty string.
        page_title: Title of the page (``page``).
        referrer: URL of the referring page (``refr``).
        min_x: Minimum horizontal scroll offset (``pp_mix``).
        max_x: Maximum horizontal scroll offset (``pp_max``).
        min_y: Minimum vertical scroll offset (``pp_miy``).
        max_y: Maximum vertical scroll offset (``pp_may``).
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
        min_x: Optional[int] = None,
        max_x: Optional[int] = None,
        min_y: Optional[int] = None,
        max_y: Optional[int] = None,
        event_subject: Optional[Subject] = None,
        context: Optional[Iterable[SelfDescribingJson]] = None,
        true_timestamp: Optional[float] = None,
    ) -> None:
        super().__init__(
            event_subject=event_subject, context=context, true_timestamp=true_timestamp
        )
        self.payload.add("e", "pp")
        self.page_url = page_url
        self.page_title = page_title
        self.referrer = referrer
        self.min_x = min_x
        self.max_x = max_x
        self.min_y = min_y
        self.max_y = max_y

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

    @property
    def min_x(self) -> Optional[int]:
        """Minimum horizontal scroll offset (``pp_mix``)."""
        return cast(Optional[int], self.payload.nv_pairs.get("pp_mix"))

    @min_x.setter
    def min_x(self, value: Optional[int]) -> None:
        _set_field(self, "pp_mix", value)

    @property
    def max_x(self) -> Optional[int]:
        """Maximum horizontal scroll offset (``pp_max``)."""
        return cast(Optional[int], self.payload.nv_pairs.get("pp_max"))

    @max_x.setter
    def max_x(self, value: Optional[int]) -> None:
        _set_field(self, "pp_max", value)

    @property
    def min_y(self) -> Optional[int]:
        """Minimum vertical scroll offset (``pp_miy``)."""
        return cast(Optional[int], self.payload.nv_pairs.get("pp_miy"))

    @min_y.setter
    def min_y(self, value: Optional[int]) -> None:
        _set_field(self, "pp_miy", value)

    @property
    def max_y(self) -> Optional[int]:
        """Maximum vertical scroll offset (``pp_may``)."""
        return cast(Optional[int], self.payload.nv_pairs.get("pp_may"))

    @max_y.setter
    def max_y(self, value: Optional[int]) -> None:
        _set_field(self, "pp_may", value)
