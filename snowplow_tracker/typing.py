"""Type aliases, form constants and the emitter protocol shared by the package.

The module name shadows the standard library's ``typing`` only inside this package when
imported relatively; every module here imports with absolute paths, so ``import typing``
still means the standard library.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple, Union

from typing_extensions import Literal, Protocol

PayloadDict = Dict[str, Any]
"""One event as a flat mapping of tracker-protocol keys to values."""

PayloadDictList = List[PayloadDict]
"""A list of events, as given to the ``on_success``/``on_failure`` callbacks."""

JsonEncoderFunction = Callable[[Any], Any]
"""A ``default=`` hook for :func:`json.dumps` turning unknown objects into JSON values."""

FORM_NODE_NAMES = {"INPUT", "TEXTAREA", "SELECT"}
"""HTML node names accepted by ``track_form_change`` and ``track_form_submit``."""

FORM_TYPES = {
    "button",
    "checkbox",
    "color",
    "date",
    "datetime",
    "datetime-local",
    "email",
    "file",
    "hidden",
    "image",
    "month",
    "number",
    "password",
    "radio",
    "range",
    "reset",
    "search",
    "submit",
    "tel",
    "text",
    "time",
    "url",
    "week",
}
"""HTML ``<input type>`` values accepted by the form tracking methods."""

FormNodeName = Literal["INPUT", "TEXTAREA", "SELECT"]
"""A value of ``FORM_NODE_NAMES``."""

ElementClasses = Union[List[str], Tuple[str, Any]]
"""CSS classes of an HTML element."""

FormClasses = ElementClasses
"""CSS classes of an HTML form."""

HttpProtocol = Literal["http", "https"]
"""Scheme used to reach the collector."""

Method = Literal["get", "post"]
"""HTTP method used to send events."""

SuccessCallback = Callable[[PayloadDictList], None]
"""Called with the list of event dicts a send delivered."""

FailureCallback = Callable[[int, PayloadDictList], None]
"""Called with the number of delivered events and the list of event dicts that failed."""

SUPPORTED_PLATFORMS = {"pc", "tv", "mob", "cnsl", "iot", "web", "srv", "app"}
"""Values accepted for the ``p`` (platform) key."""

SupportedPlatform = Literal["pc", "tv", "mob", "cnsl", "iot", "web", "srv", "app"]
"""A value of ``SUPPORTED_PLATFORMS``."""


class InputEmitter(Protocol):
    """The least a tracker needs from an emitter: ``input``.

    ``Tracker`` accepts any object with this method; flush methods are called when present.
    """

    def input(self, payload: PayloadDict) -> None:
        """Accept one event payload."""


class EmitterProtocol(Protocol):
    """What a tracker needs from an emitter.

    The tracker only ever requires ``input``; the flush methods are called when present,
    so duck-typed emitters that implement a subset keep working.
    """

    def input(self, payload: PayloadDict) -> None:
        """Accept one event payload."""

    def flush(self) -> None:
        """Start sending buffered events."""

    def async_flush(self) -> None:
        """Start sending buffered events without waiting."""

    def sync_flush(self) -> None:
        """Send buffered events and wait for the attempt to finish."""
