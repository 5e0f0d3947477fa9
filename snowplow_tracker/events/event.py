"""The base class of all events."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional

from snowplow_tracker.constants import CONTEXT_SCHEMA
from snowplow_tracker.payload import Payload, add_kept
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject
from snowplow_tracker.typing import JsonEncoderFunction, PayloadDict


class Event:
    """An event: its own payload keys plus subject, context entities and true timestamp.

    ``payload`` holds only the event-specific keys. :meth:`build_payload` never changes
    it: every call returns a new :class:`~snowplow_tracker.payload.Payload`, so one event
    object can be tracked many times, by several trackers, without the results sharing
    state.

    Args:
        dict_: Initial event-specific pairs; ``None`` and ``""`` values are skipped.
        event_subject: A subject merged over the tracker's subject for this event.
        context: Context entities (any sized iterable of ``SelfDescribingJson``).
        true_timestamp: The user-defined event time in milliseconds (sent as ``ttm``).

    Attributes:
        payload: The event-specific keys only (e.g. ``e``, ``url``); the context, ``ttm``
            and subject keys are added to a new payload by :meth:`build_payload`.
    """

    payload: Payload
    _event_subject: Optional[Subject]
    _context: Optional[Iterable[SelfDescribingJson]]
    _true_timestamp: Optional[float]

    def __init__(
        self,
        dict_: Optional[PayloadDict] = None,
        event_subject: Optional[Subject] = None,
        context: Optional[Iterable[SelfDescribingJson]] = None,
        true_timestamp: Optional[float] = None,
    ) -> None:
        payload = Payload()
        if dict_ is not None:
            payload.add_dict(dict_)
        _init_event(self, payload, event_subject, context, true_timestamp)

    @property
    def event_subject(self) -> Optional[Subject]:
        """The event-level subject, or ``None``."""
        return self._event_subject

    @event_subject.setter
    def event_subject(self, value: Optional[Subject]) -> None:
        self._event_subject = value

    @property
    def context(self) -> Optional[Iterable[SelfDescribingJson]]:
        """The context entities of the event (``None`` behaves like an empty list)."""
        return self._context

    @context.setter
    def context(self, value: Optional[Iterable[SelfDescribingJson]]) -> None:
        self._context = value

    @property
    def true_timestamp(self) -> Optional[float]:
        """The true timestamp in milliseconds, or ``None``."""
        return self._true_timestamp

    @true_timestamp.setter
    def true_timestamp(self, value: Optional[float]) -> None:
        self._true_timestamp = value

    def build_payload(
        self,
        encode_base64: bool,
        json_encoder: Optional[JsonEncoderFunction],
        subject: Optional[Subject] = None,
    ) -> Payload:
        """Build the event's full payload, without the tracker's keys.

        The result holds, in order: the event-specific keys, the context envelope
        (``cx``/``co``), ``ttm``, then the subject keys (the event subject merged over
        ``subject``, or ``subject``'s own keys).

        Args:
            encode_base64: Whether JSON fields are base64-encoded.
            json_encoder: ``default=`` hook for the JSON serialisation.
            subject: The tracker's subject.

        Returns:
            A new payload; ``self.payload`` is left unchanged.

        Raises:
            TypeError: If a context entity or a JSON value cannot be serialised.
        """
        payload = Payload(self.payload.nv_pairs)
        self._add_event_json(payload, encode_base64, json_encoder)
        self._add_common(payload, encode_base64, json_encoder, subject)
        return payload

    def _add_event_json(
        self,
        payload: Payload,
        encode_base64: bool,
        json_encoder: Optional[JsonEncoderFunction],
    ) -> None:
        """Add event JSON that comes before the context (a hook for subclasses)."""

    def _add_common(
        self,
        payload: Payload,
        encode_base64: bool,
        json_encoder: Optional[JsonEncoderFunction],
        subject: Optional[Subject],
    ) -> None:
        """Add the context envelope, ``ttm`` and the subject keys to ``payload``."""
        context = self._context
        if context:
            payload.add_json(
                {"schema": CONTEXT_SCHEMA, "data": _context_data(context)},
                encode_base64,
                "cx",
                "co",
                json_encoder,
            )
        true_timestamp = self._true_timestamp
        if isinstance(true_timestamp, (int, float)):
            payload.nv_pairs["ttm"] = int(true_timestamp)
        event_subject = self._event_subject
        if event_subject is not None:
            payload.add_dict(event_subject.combine_subject(subject))
        elif subject is not None:
            payload.add_dict(subject.standard_nv_pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.payload.nv_pairs!r})"


def _init_event(
    event: Event,
    payload: Payload,
    event_subject: Optional[Subject],
    context: Optional[Iterable[SelfDescribingJson]],
    true_timestamp: Optional[float],
) -> None:
    """Set what ``Event.__init__`` sets: the payload and the attributes behind the properties.

    The event classes of this package call it with a payload they built themselves
    (:func:`_payload_of`), which saves the tracking call a copy and a property call per field.
    """
    event.payload = payload
    event._event_subject = event_subject
    event._context = context if context is not None else []
    event._true_timestamp = true_timestamp


def _payload_of(pairs: PayloadDict) -> Payload:
    """A payload holding ``pairs`` (adopted, not copied) minus ``None`` and ``""`` values.

    The same pairs ``Payload().add_dict(pairs)`` keeps; a dict without a falsy value (the
    usual case) is kept as it is.
    """
    try:
        complete = all(pairs.values())
    except Exception:  # a value whose truth cannot be tested
        complete = False
    if not complete:
        kept: PayloadDict = {}
        add_kept(kept, pairs)
        pairs = kept
    payload = Payload()
    payload.nv_pairs = pairs
    return payload


def _set_field(event: Event, key: str, value: Any) -> None:
    """Store ``value`` under ``key`` in the event's own payload.

    ``None`` and ``""`` remove the key, so a property can be cleared.
    """
    if value is None or (isinstance(value, str) and not value):
        event.payload.nv_pairs.pop(key, None)
    else:
        event.payload.nv_pairs[key] = value


def _context_data(context: Iterable[Any]) -> List[Any]:
    """Return the ``to_json()`` form of every context entity.

    Raises:
        TypeError: If ``context`` is a single entity or holds objects without ``to_json``.
    """
    if isinstance(context, (SelfDescribingJson, dict, str, bytes)):
        raise TypeError(
            f"context must be a list of SelfDescribingJson objects, not {type(context).__name__}."
        )
    try:
        return [entity.to_json() for entity in context]
    except AttributeError:
        for entity in context:
            if not hasattr(entity, "to_json"):
                raise TypeError(
                    f"context must contain SelfDescribingJson objects, not {type(entity).__name__}."
                ) from None
        raise
