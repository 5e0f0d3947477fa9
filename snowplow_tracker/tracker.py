"""The tracker: turns events into payloads and hands them to emitters."""

from __future__ import annotations

import logging
import os
import struct
import time
import uuid
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union, cast

from snowplow_tracker.constants import (
    BASE_SCHEMA_PATH,
    DEFAULT_ENCODE_BASE64,
    SCHEMA_TAG,
    VERSION,
)
from snowplow_tracker.contracts import (
    form_element,
    non_empty,
    non_empty_string,
    one_of,
)
from snowplow_tracker.events import (
    Event,
    PagePing,
    PageView,
    ScreenView,
    SelfDescribing,
    StructuredEvent,
)
from snowplow_tracker.payload import Payload, add_kept
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject
from snowplow_tracker.typing import (
    FORM_NODE_NAMES,
    FORM_TYPES,
    ElementClasses,
    FormClasses,
    FormNodeName,
    InputEmitter,
    JsonEncoderFunction,
    PayloadDict,
)

__all__ = [
    "BASE_SCHEMA_PATH",
    "DEFAULT_ENCODE_BASE64",
    "FORM_NODE_NAMES",
    "FORM_TYPES",
    "SCHEMA_TAG",
    "VERSION",
    "Tracker",
]


# The standard library's uuid4, unless it was already replaced when this module loaded.
_STDLIB_UUID4 = uuid.uuid4 if getattr(uuid.uuid4, "__module__", None) == "uuid" else None
# RFC 4122 variant: the top two bits of the 17th hex digit are 10.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}

# Random bytes for event ids, read 512 bytes at a time and handed out 16 bytes at a time
# (``Struct.iter_unpack`` cuts them lazily; cutting them all up front made every refill
# call slower). ``next()`` on the chunk iterator is atomic, so threads never share a chunk;
# the pool belongs to one process id, so a forked child (with or without fork hooks) draws
# fresh bytes instead of its parent's.
#
# The bytes come from the kernel's getrandom(), the source of ``os.urandom`` and so of
# ``uuid.uuid4``. Where it exists, ``os.getrandom`` is called rather than ``os.urandom``
# because it keeps the GIL: ``os.urandom`` releases it, and in a tracking loop that never
# blocks, that release every few milliseconds restarted the switch-interval timer of the
# sender thread waiting for the GIL, so an AsyncEmitter sent nothing until the loop ended
# (measured: 0 of 10,000 events delivered during a 150 ms loop; 2,500-4,200 with
# ``os.getrandom``).
#
# The read size trades the cost per id against the cost of the one call that refills:
# getrandom() takes about 0.5 µs plus 2.6 µs per KiB here, so 4 KiB made every 256th
# tracking call 11 µs slower (its p99 while sending: page view 21.0 -> 16.7 µs with 512
# bytes), while 16 bytes per call would cost 0.5 µs each. 512 bytes: 1.8 µs every 32 ids.
_POOL_BYTES = 512
_CHUNK = struct.Struct("16s")
_pool: Tuple[int, Iterator[Tuple[bytes]]] = (-1, iter(()))


def _random_bytes(size: int) -> bytes:
    """``size`` random bytes from the kernel, without releasing the GIL where possible."""
    getrandom = getattr(os, "getrandom", None)
    if getrandom is not None:
        try:
            # Non-blocking: before the kernel's pool is ready (early boot) this raises
            # instead of stalling every thread; os.urandom then waits without the GIL.
            data = bytes(getrandom(size, os.GRND_NONBLOCK))
        except OSError:  # that, or no getrandom() system call (Linux before 3.17)
            data = b""
        if len(data) == size:  # a signal can cut a read short
            return data
    return os.urandom(size)


def _refill_pool() -> Iterator[Tuple[bytes]]:
    global _pool
    chunks = _CHUNK.iter_unpack(_random_bytes(_POOL_BYTES))
    _pool = (os.getpid(), chunks)
    return chunks


logger = logging.getLogger(__name__)

ContextList = Optional[List[SelfDescribingJson]]
"""Context entities of one event, or ``None``."""

EmitterArgument = Union[List[InputEmitter], Tuple[InputEmitter, ...], InputEmitter]
"""What ``Tracker(emitters=...)`` accepts: one emitter, or a list or tuple of them."""

_LINK_CLICK_SCHEMA = f"{BASE_SCHEMA_PATH}/link_click/{SCHEMA_TAG}/1-0-1"
_ADD_TO_CART_SCHEMA = f"{BASE_SCHEMA_PATH}/add_to_cart/{SCHEMA_TAG}/1-0-0"
_REMOVE_FROM_CART_SCHEMA = f"{BASE_SCHEMA_PATH}/remove_from_cart/{SCHEMA_TAG}/1-0-0"
_FORM_CHANGE_SCHEMA = f"{BASE_SCHEMA_PATH}/change_form/{SCHEMA_TAG}/1-0-0"
_FORM_SUBMIT_SCHEMA = f"{BASE_SCHEMA_PATH}/submit_form/{SCHEMA_TAG}/1-0-0"
_SITE_SEARCH_SCHEMA = f"{BASE_SCHEMA_PATH}/site_search/{SCHEMA_TAG}/1-0-0"
_LEGACY_SCREEN_VIEW_SCHEMA = f"{BASE_SCHEMA_PATH}/screen_view/{SCHEMA_TAG}/1-0-0"

# Keys an item of ``track_ecommerce_transaction`` may carry: the keyword parameters of
# ``track_ecommerce_transaction_item``.
_ITEM_KEYS = frozenset(
    {
        "order_id",
        "sku",
        "price",
        "quantity",
        "name",
        "category",
        "currency",
        "context",
        "tstamp",
        "event_subject",
    }
)
_ITEM_REQUIRED_KEYS = ("sku", "price", "quantity")


def _replaced_by(method: str, cls: str) -> str:
    return (
        f"{method} is deprecated and will be removed in a future version; "
        f"create a {cls} event and pass it to Tracker.track() instead."
    )


def _to_be_deprecated(method: str) -> str:
    return f"{method} will be deprecated in a future version."


def _warn(message: str) -> None:
    # stacklevel 3: attribute the warning to the caller of the track_* method.
    warnings.warn(message, DeprecationWarning, stacklevel=3)


def _check_emitter(emitter: Any) -> None:
    if not callable(getattr(emitter, "input", None)):
        raise TypeError(
            f"emitters must provide an input(payload) method; got {type(emitter).__name__}."
        )


def _check_timeout(timeout: float) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}.")
    if not timeout >= 0:
        raise ValueError("timeout must be greater than or equal to 0.")


class Tracker:
    """Builds event payloads and passes each one to every emitter.

    Args:
        namespace: Name of this tracker, sent as ``tna``.
        emitters: One emitter, or a non-empty list (or tuple) of emitters. Any object with
            an ``input(payload)`` method works as an emitter.
        subject: The subject of all events; a new :class:`Subject` when ``None``.
        app_id: Application ID, sent as ``aid`` (omitted when ``None``).
        encode_base64: Whether JSON fields are base64-encoded (``cx``/``ue_px``) rather
            than sent raw (``co``/``ue_pr``).
        json_encoder: ``default=`` hook used when serialising contexts and
            self-describing events (for example for ``datetime`` values).

    Raises:
        ValueError: If ``emitters`` is an empty list (while contracts are enabled).
        TypeError: If ``namespace`` is not a string or an emitter has no ``input`` method.

    Attributes:
        emitters: The emitters, in order; ``add_emitter`` appends to this list (the list
            given to the constructor, when it was a list).
        subject: The tracker's subject, or ``None`` (no subject keys are sent).
        encode_base64: Whether JSON fields are base64-encoded.
        json_encoder: The ``default=`` hook for JSON serialisation, or ``None``.
        standard_nv_pairs: The keys the tracker adds to every event: ``tv``, ``tna`` and
            ``aid``.
    """

    def __init__(
        self,
        namespace: str,
        emitters: EmitterArgument,
        subject: Optional[Subject] = None,
        app_id: Optional[str] = None,
        encode_base64: bool = DEFAULT_ENCODE_BASE64,
        json_encoder: Optional[JsonEncoderFunction] = None,
    ) -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a string, not {type(namespace).__name__}.")
        if isinstance(emitters, list):
            non_empty(emitters, name="emitters")
            self.emitters: List[InputEmitter] = emitters
        elif isinstance(emitters, tuple):
            non_empty(emitters, name="emitters")
            self.emitters = list(emitters)
        else:
            self.emitters = [emitters]
        for emitter in self.emitters:
            _check_emitter(emitter)

        self.subject: Optional[Subject] = subject if subject is not None else Subject()
        self.encode_base64 = encode_base64
        self.json_encoder = json_encoder
        self.standard_nv_pairs: Dict[str, Optional[str]] = {
            "tv": VERSION,
            "tna": namespace,
            "aid": app_id,
        }
        self.timer = None

    @staticmethod
    def get_uuid() -> str:
        """Return a new random event ID.

        Returns:
            ``str(uuid.uuid4())``: a random (version 4) UUID. It is formatted directly from
            kernel random bytes (the source and bits of ``uuid.uuid4``), read 512 bytes at a
            time per process; when ``uuid.uuid4`` has been replaced, e.g. by a test pinning
            ids, that replacement is called instead.
        """
        generate = uuid.uuid4
        if generate is not _STDLIB_UUID4:
            return str(generate())
        pid, chunks = _pool
        chunk = next(chunks, None) if pid == os.getpid() else None
        if chunk is None:
            chunk = next(_refill_pool())
        h = chunk[0].hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    @staticmethod
    def get_timestamp(tstamp: Optional[float] = None) -> int:
        """Return a timestamp in milliseconds.

        Args:
            tstamp: A timestamp in milliseconds; used (truncated to an int) when it is a
                number.

        Returns:
            ``int(tstamp)``, or the current time in milliseconds.
        """
        if isinstance(tstamp, (int, float)):
            return int(tstamp)
        return int(time.time() * 1000)

    # ------------------------------------------------------------------ tracking

    def track(self, event: Event) -> Optional[str]:
        """Track an event: complete its payload and pass it to every emitter.

        Each call builds a new payload dict. With several emitters, each receives its own
        copy, so no emitter sees changes another one makes.

        Args:
            event: The event to track.

        Returns:
            The event ID (``eid``).

        Raises:
            TypeError: If ``event`` is not an event, or a JSON value cannot be serialised.
        """
        event_id: Optional[str]
        if type(self).complete_payload is _COMPLETE_PAYLOAD:
            # complete_payload(), inlined for the common case: same steps, same order.
            build_payload = getattr(event, "build_payload", None)
            if build_payload is None:
                raise TypeError(f"event must be an Event, not {type(event).__name__}.")
            nv_pairs = build_payload(
                encode_base64=self.encode_base64,
                json_encoder=self.json_encoder,
                subject=self.subject,
            ).nv_pairs
            nv_pairs["eid"] = event_id = self.get_uuid()
            nv_pairs["dtm"] = self.get_timestamp()
            add_kept(nv_pairs, self.standard_nv_pairs)
        else:
            nv_pairs = self.complete_payload(event=event).nv_pairs
            event_id = cast("Optional[str]", nv_pairs.get("eid"))
        emitters = self.emitters
        if len(emitters) == 1:
            emitters[0].input(nv_pairs)
        elif emitters:
            targets = list(emitters)
            for emitter in targets[:-1]:
                emitter.input(dict(nv_pairs))
            targets[-1].input(nv_pairs)
        return event_id

    def complete_payload(self, event: Event) -> Payload:
        """Build an event's payload and add the tracker's keys.

        After the event's own keys, context, ``ttm`` and subject keys come ``eid``,
        ``dtm`` (creation time in milliseconds, an int), ``tv``, ``tna`` and ``aid``.

        Args:
            event: The event.

        Returns:
            A new payload.

        Raises:
            TypeError: If ``event`` is not an event.
        """
        build_payload = getattr(event, "build_payload", None)
        if build_payload is None:
            raise TypeError(f"event must be an Event, not {type(event).__name__}.")
        payload: Payload = build_payload(
            encode_base64=self.encode_base64,
            json_encoder=self.json_encoder,
            subject=self.subject,
        )
        payload.add("eid", self.get_uuid())
        payload.add("dtm", self.get_timestamp())
        payload.add_dict(self.standard_nv_pairs)
        return payload

    # ------------------------------------------------------------------ emitters

    def flush(self, is_async: bool = False) -> Tracker:
        """Flush every emitter.

        Args:
            is_async: Call each emitter's ``flush()`` instead of its ``sync_flush()``.
                Emitters without the method are skipped.

        Returns:
            This tracker.
        """
        for emitter in list(self.emitters):
            if is_async:
                if hasattr(emitter, "flush"):
                    emitter.flush()
            elif hasattr(emitter, "sync_flush"):
                emitter.sync_flush()
        return self

    def force_flush(self, timeout: float = 5.0) -> Tracker:
        """Send everything buffered, waiting at most about ``timeout`` seconds in total.

        Calls ``force_flush(remaining_time)`` on emitters that have it; on others
        ``sync_flush()``, or else ``flush()``. Every emitter is flushed even if one raises;
        the first exception is re-raised at the end.

        Args:
            timeout: Time budget in seconds shared by all emitters.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``timeout`` is negative.
            TypeError: If ``timeout`` is not a number.
        """
        _check_timeout(timeout)
        self._for_each_emitter(timeout, _force_flush_emitter, "flush")
        return self

    def shutdown(self, timeout: float = 5.0) -> Tracker:
        """Flush and stop every emitter, waiting at most about ``timeout`` seconds in total.

        Calls ``shutdown(remaining_time)`` on emitters that have it and flushes the others
        as :meth:`force_flush` does. Every emitter is handled even if one raises; the first
        exception is re-raised at the end.

        Args:
            timeout: Time budget in seconds shared by all emitters.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``timeout`` is negative.
            TypeError: If ``timeout`` is not a number.
        """
        _check_timeout(timeout)
        self._for_each_emitter(timeout, _shutdown_emitter, "shut down")
        return self

    def _for_each_emitter(
        self, timeout: float, action: Callable[[Any, float], None], what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        first_error: Optional[BaseException] = None
        for emitter in list(self.emitters):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                action(emitter, remaining)
            except Exception as error:
                logger.warning(
                    "Emitter %s failed to %s: %s",
                    type(emitter).__name__,
                    what,
                    type(error).__name__,
                )
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error

    def set_subject(self, subject: Optional[Subject]) -> Tracker:
        """Replace the tracker's subject.

        Args:
            subject: The new subject; ``None`` sends no subject keys at all.

        Returns:
            This tracker.
        """
        self.subject = subject
        return self

    def add_emitter(self, emitter: InputEmitter) -> Tracker:
        """Add an emitter.

        Args:
            emitter: An object with an ``input(payload)`` method.

        Returns:
            This tracker.

        Raises:
            TypeError: If the emitter has no ``input`` method.
        """
        _check_emitter(emitter)
        self.emitters.append(emitter)
        return self

    def get_namespace(self) -> str:
        """Return the tracker's namespace.

        Returns:
            The namespace (``tna``).
        """
        return cast(str, self.standard_nv_pairs["tna"])

    # ------------------------------------------------------------------ deprecated API

    def track_page_view(
        self,
        page_url: str,
        page_title: Optional[str] = None,
        referrer: Optional[str] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a page view (deprecated: use :class:`PageView` with :meth:`track`).

        Args:
            page_url: URL of the page.
            page_title: Title of the page.
            referrer: URL of the referrer.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.
        """
        _warn(_replaced_by("track_page_view", "PageView"))
        pv = PageView(
            page_url=page_url,
            page_title=page_title,
            referrer=referrer,
            event_subject=event_subject,
            context=context,
            true_timestamp=tstamp,
        )
        self.track(event=pv)
        return self

    def track_page_ping(
        self,
        page_url: str,
        page_title: Optional[str] = None,
        referrer: Optional[str] = None,
        min_x: Optional[int] = None,
        max_x: Optional[int] = None,
        min_y: Optional[int] = None,
        max_y: Optional[int] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a page ping (deprecated: use :class:`PagePing` with :meth:`track`).

        Args:
            page_url: URL of the page.
            page_title: Title of the page.
            referrer: URL of the referrer.
            min_x: Minimum horizontal scroll offset.
            max_x: Maximum horizontal scroll offset.
            min_y: Minimum vertical scroll offset.
            max_y: Maximum vertical scroll offset.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.
        """
        _warn(_replaced_by("track_page_ping", "PagePing"))
        pp = PagePing(
            page_url=page_url,
            page_title=page_title,
            referrer=referrer,
            min_x=min_x,
            max_x=max_x,
            min_y=min_y,
            max_y=max_y,
            event_subject=event_subject,
            context=context,
            true_timestamp=tstamp,
        )
        self.track(event=pp)
        return self

    def track_link_click(
        self,
        target_url: str,
        element_id: Optional[str] = None,
        element_classes: Optional[ElementClasses] = None,
        element_target: Optional[str] = None,
        element_content: Optional[str] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a link click (deprecated: use :class:`SelfDescribing` with :meth:`track`).

        Sent as a ``link_click`` 1-0-1 self-describing event.

        Args:
            target_url: URL the link points to.
            element_id: ``id`` attribute of the link element.
            element_classes: Classes of the link element.
            element_target: ``target`` attribute of the link element.
            element_content: Inner HTML of the link element.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``target_url`` is empty.
        """
        _warn(_replaced_by("track_link_click", "SelfDescribing"))
        non_empty_string(target_url, name="target_url")
        data: PayloadDict = {"targetUrl": target_url}
        if element_id is not None:
            data["elementId"] = element_id
        if element_classes is not None:
            data["elementClasses"] = element_classes
        if element_target is not None:
            data["elementTarget"] = element_target
        if element_content is not None:
            data["elementContent"] = element_content
        self.track_self_describing_event(
            event_json=SelfDescribingJson(_LINK_CLICK_SCHEMA, data),
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self

    def track_add_to_cart(
        self,
        sku: str,
        quantity: int,
        name: Optional[str] = None,
        category: Optional[str] = None,
        unit_price: Optional[float] = None,
        currency: Optional[str] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track an item added to a cart (deprecated).

        Sent as an ``add_to_cart`` 1-0-0 self-describing event.

        Args:
            sku: Item SKU.
            quantity: Number added.
            name: Item name.
            category: Item category.
            unit_price: Price of one item.
            currency: Currency code.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``sku`` is empty.
        """
        _warn(_to_be_deprecated("track_add_to_cart"))
        non_empty_string(sku, name="sku")
        self.track_self_describing_event(
            event_json=SelfDescribingJson(
                _ADD_TO_CART_SCHEMA,
                _cart_data(sku, quantity, name, category, unit_price, currency),
            ),
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self

    def track_remove_from_cart(
        self,
        sku: str,
        quantity: int,
        name: Optional[str] = None,
        category: Optional[str] = None,
        unit_price: Optional[float] = None,
        currency: Optional[str] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track an item removed from a cart (deprecated).

        Sent as a ``remove_from_cart`` 1-0-0 self-describing event.

        Args:
            sku: Item SKU.
            quantity: Number removed.
            name: Item name.
            category: Item category.
            unit_price: Price of one item.
            currency: Currency code.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``sku`` is empty.
        """
        _warn(_to_be_deprecated("track_remove_from_cart"))
        non_empty_string(sku, name="sku")
        self.track_self_describing_event(
            event_json=SelfDescribingJson(
                _REMOVE_FROM_CART_SCHEMA,
                _cart_data(sku, quantity, name, category, unit_price, currency),
            ),
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self

    def track_form_change(
        self,
        form_id: str,
        element_id: Optional[str],
        node_name: FormNodeName,
        value: Optional[str],
        type_: Optional[str] = None,
        element_classes: Optional[ElementClasses] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a change of a form field (deprecated).

        Sent as a ``change_form`` 1-0-0 self-describing event; ``elementId`` and ``value``
        are always present (``null`` when ``None``).

        Args:
            form_id: ID of the form.
            element_id: ID of the changed element.
            node_name: ``INPUT``, ``TEXTAREA`` or ``SELECT``.
            value: New value of the element.
            type_: Input type (checked case-insensitively against the HTML input types).
            element_classes: Classes of the element.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``form_id`` is empty or ``node_name``/``type_`` is unsupported.
        """
        _warn(_replaced_by("track_form_change", "SelfDescribing"))
        non_empty_string(form_id, name="form_id")
        one_of(node_name, FORM_NODE_NAMES, name="node_name")
        if type_ is not None:
            one_of(type_.lower() if isinstance(type_, str) else type_, FORM_TYPES, name="type_")
        data: PayloadDict = {
            "formId": form_id,
            "elementId": element_id,
            "nodeName": node_name,
            "value": value,
        }
        if type_ is not None:
            data["type"] = type_
        if element_classes is not None:
            data["elementClasses"] = element_classes
        self.track_self_describing_event(
            event_json=SelfDescribingJson(_FORM_CHANGE_SCHEMA, data),
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self

    def track_form_submit(
        self,
        form_id: str,
        form_classes: Optional[FormClasses] = None,
        elements: Optional[List[Dict[str, Any]]] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a form submission (deprecated).

        Sent as a ``submit_form`` 1-0-0 self-describing event.

        Args:
            form_id: ID of the form.
            form_classes: Classes of the form.
            elements: The form's fields, each a dict with ``name``, ``value``,
                ``nodeName`` and optionally ``type``; included when non-empty.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``form_id`` is empty or an element is malformed.
        """
        _warn(_replaced_by("track_form_submit", "SelfDescribing"))
        non_empty_string(form_id, name="form_id")
        for element in elements or ():
            form_element(element, name="element")
        data: PayloadDict = {"formId": form_id}
        if form_classes is not None:
            data["formClasses"] = form_classes
        if elements:
            data["elements"] = elements
        self.track_self_describing_event(
            event_json=SelfDescribingJson(_FORM_SUBMIT_SCHEMA, data),
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self

    def track_site_search(
        self,
        terms: List[str],
        filters: Optional[Dict[str, Union[str, bool]]] = None,
        total_results: Optional[int] = None,
        page_results: Optional[int] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a search on the site (deprecated).

        Sent as a ``site_search`` 1-0-0 self-describing event.

        Args:
            terms: The search terms (non-empty).
            filters: Filters applied to the search.
            total_results: Total number of results.
            page_results: Number of results shown on the page.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``terms`` is empty.
        """
        _warn(_replaced_by("track_site_search", "SelfDescribing"))
        non_empty(terms, name="terms")
        data: PayloadDict = {"terms": terms}
        if filters is not None:
            data["filters"] = filters
        if total_results is not None:
            data["totalResults"] = total_results
        if page_results is not None:
            data["pageResults"] = page_results
        self.track_self_describing_event(
            event_json=SelfDescribingJson(_SITE_SEARCH_SCHEMA, data),
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self

    def track_ecommerce_transaction_item(
        self,
        order_id: str,
        sku: str,
        price: float,
        quantity: int,
        name: Optional[str] = None,
        category: Optional[str] = None,
        currency: Optional[str] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track one item of an ecommerce transaction (``e=ti``; deprecated).

        Args:
            order_id: ID of the transaction.
            sku: Item SKU.
            price: Price of one item.
            quantity: Number of items.
            name: Item name.
            category: Item category.
            currency: Currency code.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``order_id`` or ``sku`` is empty.
        """
        _warn(_to_be_deprecated("track_ecommerce_transaction_item"))
        non_empty_string(order_id, name="order_id")
        non_empty_string(sku, name="sku")
        event = Event(event_subject=event_subject, context=context, true_timestamp=tstamp)
        payload = event.payload
        payload.add("e", "ti")
        payload.add("ti_id", order_id)
        payload.add("ti_sk", sku)
        payload.add("ti_nm", name)
        payload.add("ti_ca", category)
        payload.add("ti_pr", price)
        payload.add("ti_qu", quantity)
        payload.add("ti_cu", currency)
        self.track(event=event)
        return self

    def track_ecommerce_transaction(
        self,
        order_id: str,
        total_value: float,
        affiliation: Optional[str] = None,
        tax_value: Optional[float] = None,
        shipping: Optional[float] = None,
        city: Optional[str] = None,
        state: Optional[str] = None,
        country: Optional[str] = None,
        currency: Optional[str] = None,
        items: Optional[List[Dict[str, Any]]] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track an ecommerce transaction (``e=tr``) and its items (``e=ti``; deprecated).

        Each item is tracked through :meth:`track_ecommerce_transaction_item` with the
        transaction's ``order_id``, ``currency``, ``tstamp``, ``event_subject`` and
        ``context``. The item dicts are not modified. Items are checked before anything
        is tracked.

        Args:
            order_id: ID of the transaction.
            total_value: Total value.
            affiliation: Affiliation.
            tax_value: Tax.
            shipping: Delivery cost.
            city: Delivery city.
            state: Delivery state.
            country: Delivery country.
            currency: Currency code.
            items: Item dicts with the keys ``sku``, ``price``, ``quantity`` and
                optionally ``name`` and ``category``.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.

        Raises:
            ValueError: If ``order_id`` or an item's ``sku`` is empty.
            TypeError: If an item is not a dict or has unknown or missing keys.
        """
        _warn(_to_be_deprecated("track_ecommerce_transaction"))
        non_empty_string(order_id, name="order_id")
        item_list = list(items) if items is not None else []
        for item in item_list:
            _check_item(item)

        event = Event(event_subject=event_subject, context=context, true_timestamp=tstamp)
        payload = event.payload
        payload.add("e", "tr")
        payload.add("tr_id", order_id)
        payload.add("tr_tt", total_value)
        payload.add("tr_af", affiliation)
        payload.add("tr_tx", tax_value)
        payload.add("tr_sh", shipping)
        payload.add("tr_ci", city)
        payload.add("tr_st", state)
        payload.add("tr_co", country)
        payload.add("tr_cu", currency)
        self.track(event=event)

        for item in item_list:
            arguments = dict(item)
            arguments["order_id"] = order_id
            arguments["currency"] = currency
            arguments["tstamp"] = tstamp
            arguments["event_subject"] = event_subject
            arguments["context"] = context
            self.track_ecommerce_transaction_item(**arguments)
        return self

    def track_screen_view(
        self,
        name: Optional[str] = None,
        id_: Optional[str] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a screen view with the legacy ``com.snowplowanalytics.snowplow`` schema.

        Deprecated: use :class:`ScreenView` with :meth:`track`.

        Args:
            name: Name of the screen.
            id_: ID of the screen.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.
        """
        _warn(_replaced_by("track_screen_view", "ScreenView"))
        data: PayloadDict = {}
        if name is not None:
            data["name"] = name
        if id_ is not None:
            data["id"] = id_
        self.track_self_describing_event(
            event_json=SelfDescribingJson(_LEGACY_SCREEN_VIEW_SCHEMA, data),
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self

    def track_mobile_screen_view(
        self,
        name: str,
        id_: Optional[str] = None,
        type: Optional[str] = None,
        previous_name: Optional[str] = None,
        previous_id: Optional[str] = None,
        previous_type: Optional[str] = None,
        transition_type: Optional[str] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a mobile screen view (deprecated: use :class:`ScreenView` with :meth:`track`).

        Args:
            name: Name of the screen.
            id_: ID of the screen; a new UUID when ``None``.
            type: Type of the screen.
            previous_name: Name of the previous screen.
            previous_id: ID of the previous screen.
            previous_type: Type of the previous screen.
            transition_type: Type of the transition.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.
        """
        _warn(_replaced_by("track_mobile_screen_view", "ScreenView"))
        if id_ is None:
            id_ = self.get_uuid()
        sv = ScreenView(
            id_=id_,
            name=name,
            type=type,
            previous_name=previous_name,
            previous_id=previous_id,
            previous_type=previous_type,
            transition_type=transition_type,
            event_subject=event_subject,
            context=context,
            true_timestamp=tstamp,
        )
        self.track(event=sv)
        return self

    def track_struct_event(
        self,
        category: str,
        action: str,
        label: Optional[str] = None,
        property_: Optional[str] = None,
        value: Optional[Union[int, float]] = None,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a structured event (deprecated: use :class:`StructuredEvent` with :meth:`track`).

        Args:
            category: Category of the event.
            action: The action performed.
            label: A label.
            property_: A property.
            value: A numeric value.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.
        """
        _warn(_replaced_by("track_struct_event", "StructuredEvent"))
        se = StructuredEvent(
            category=category,
            action=action,
            label=label,
            property_=property_,
            value=value,
            event_subject=event_subject,
            context=context,
            true_timestamp=tstamp,
        )
        self.track(event=se)
        return self

    def track_self_describing_event(
        self,
        event_json: SelfDescribingJson,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a self-describing event (deprecated: use :class:`SelfDescribing`).

        Args:
            event_json: The event's schema and data.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.
        """
        _warn(_replaced_by("track_self_describing_event", "SelfDescribing"))
        sd = SelfDescribing(
            event_json=event_json,
            event_subject=event_subject,
            context=context,
            true_timestamp=tstamp,
        )
        self.track(event=sd)
        return self

    def track_unstruct_event(
        self,
        event_json: SelfDescribingJson,
        context: ContextList = None,
        tstamp: Optional[float] = None,
        event_subject: Optional[Subject] = None,
    ) -> Tracker:
        """Track a self-describing event (deprecated alias; use :class:`SelfDescribing`).

        Args:
            event_json: The event's schema and data.
            context: Context entities.
            tstamp: True timestamp in milliseconds.
            event_subject: Event-level subject.

        Returns:
            This tracker.
        """
        _warn(_replaced_by("track_unstruct_event", "SelfDescribing"))
        self.track_self_describing_event(
            event_json=event_json,
            context=context,
            tstamp=tstamp,
            event_subject=event_subject,
        )
        return self


def _cart_data(
    sku: str,
    quantity: int,
    name: Optional[str],
    category: Optional[str],
    unit_price: Optional[float],
    currency: Optional[str],
) -> PayloadDict:
    data: PayloadDict = {"sku": sku, "quantity": quantity}
    if name is not None:
        data["name"] = name
    if category is not None:
        data["category"] = category
    if unit_price is not None:
        data["unitPrice"] = unit_price
    if currency is not None:
        data["currency"] = currency
    return data


def _check_item(item: Any) -> None:
    """Reject an ecommerce item that ``track_ecommerce_transaction_item`` cannot take."""
    if not isinstance(item, Mapping):
        raise TypeError(f"items must contain dicts, not {type(item).__name__}.")
    unknown = [key for key in item if key not in _ITEM_KEYS]
    if unknown:
        raise TypeError(f"items: unexpected item key(s) {', '.join(map(repr, unknown))}.")
    missing = [key for key in _ITEM_REQUIRED_KEYS if key not in item]
    if missing:
        raise TypeError(f"items: missing item key(s) {', '.join(map(repr, missing))}.")
    non_empty_string(item["sku"], name="sku")


_COMPLETE_PAYLOAD = Tracker.complete_payload  # track() inlines it unless it was replaced


def _force_flush_emitter(emitter: Any, timeout: float) -> None:
    force_flush = getattr(emitter, "force_flush", None)
    if callable(force_flush):
        force_flush(timeout)
    elif hasattr(emitter, "sync_flush"):
        emitter.sync_flush()
    elif hasattr(emitter, "flush"):
        emitter.flush()


def _shutdown_emitter(emitter: Any, timeout: float) -> None:
    shutdown = getattr(emitter, "shutdown", None)
    if callable(shutdown):
        shutdown(timeout)
    else:
        _force_flush_emitter(emitter, timeout)
