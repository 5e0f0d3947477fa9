"""The flat name/value payload of one event."""

from __future__ import annotations

import binascii
import json
from json import encoder as _json_encoder
from typing import Any, Callable, Iterable, Optional, Tuple

from snowplow_tracker.typing import JsonEncoderFunction, PayloadDict

# ``json.dumps(obj, ensure_ascii=False, default=json_encoder)``, made cheaper: the encoder
# objects are built once, and the C encoder that ``JSONEncoder.encode`` would build on every
# call is built once too (without the circular-reference check: a cycle is caught as a
# RecursionError and handed to the full encoder, which reports it as ``json.dumps`` does).
_Encode = Callable[[Any], str]
_CEncoder = Callable[[Any, int], Iterable[str]]


def _encoders(json_encoder: Optional[JsonEncoderFunction]) -> Tuple[_Encode, Optional[_CEncoder]]:
    full = json.JSONEncoder(ensure_ascii=False, default=json_encoder)
    make = getattr(_json_encoder, "c_make_encoder", None)
    fast: Optional[_CEncoder] = None
    if make is not None:
        try:
            fast = make(
                None,
                full.default,
                _json_encoder.encode_basestring,
                None,
                ": ",
                ", ",
                False,
                False,
                True,
            )
        except TypeError:  # an interpreter whose C encoder takes other arguments
            fast = None
    return full.encode, fast


_PLAIN = _encoders(None)
_last_custom: Tuple[Optional[JsonEncoderFunction], Tuple[_Encode, Optional[_CEncoder]]] = (
    None,
    _PLAIN,
)


def dumps(value: Any, json_encoder: Optional[JsonEncoderFunction] = None) -> str:
    """``json.dumps(value, ensure_ascii=False, default=json_encoder)``, the same text.

    Raises:
        TypeError: If a value cannot be serialised.
        ValueError: If ``value`` contains a reference cycle.
    """
    global _last_custom
    if json_encoder is None:
        full, fast = _PLAIN
    else:
        cached_function, encoders = _last_custom
        if cached_function is not json_encoder:
            encoders = _encoders(json_encoder)
            _last_custom = (json_encoder, encoders)
        full, fast = encoders
    if fast is None:
        return full(value)
    try:
        return "".join(fast(value, 0))
    except RecursionError:
        return full(value)  # raises ValueError for a cycle, or RecursionError again


# URL-safe base64 with ``=`` padding, as ``base64.urlsafe_b64encode`` writes it.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def urlsafe_b64(data: bytes) -> str:
    """``base64.urlsafe_b64encode(data).decode("ascii")``, without the module's layers."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).decode("ascii")


def add_kept(nv_pairs: PayloadDict, pairs: PayloadDict) -> None:
    """Copy ``pairs`` into ``nv_pairs`` in order, except ``None`` and ``""`` values.

    Pairs without a falsy value (the usual case) go in through one ``dict.update``.
    """
    try:
        complete = all(pairs.values())
    except Exception:  # a value whose truth cannot be tested: check one by one
        complete = False
    if complete:
        nv_pairs.update(pairs)
        return
    for name, value in pairs.items():
        if value is None or (isinstance(value, str) and not value):
            continue
        nv_pairs[name] = value


class Payload:
    """An ordered mapping of tracker-protocol keys to values.

    Key order is the order of insertion; it becomes the query order of GET requests and
    the key order of POST bodies.

    Args:
        dict_: Initial pairs, copied verbatim (``None`` and ``""`` values included).

    Attributes:
        nv_pairs: The pairs (a plain dict, in insertion order).
    """

    def __init__(self, dict_: Optional[PayloadDict] = None) -> None:
        self.nv_pairs: PayloadDict = {} if dict_ is None else dict(dict_)

    def add(self, name: str, value: Any) -> None:
        """Store a pair, unless the value is ``None`` or the empty string.

        Args:
            name: The key.
            value: The value; ``0``, ``False`` and empty containers are kept.
        """
        if value is None or (isinstance(value, str) and not value):
            return
        self.nv_pairs[name] = value

    def add_dict(self, dict_: PayloadDict, base64: bool = False) -> None:
        """Store every pair of a mapping with the rules of :meth:`add`.

        Args:
            dict_: The pairs to add, in order.
            base64: Ignored; kept for signature compatibility.
        """
        add_kept(self.nv_pairs, dict_)

    def add_json(
        self,
        dict_: Optional[PayloadDict],
        encode_base64: bool,
        type_when_encoded: str,
        type_when_not_encoded: str,
        json_encoder: Optional[JsonEncoderFunction] = None,
    ) -> None:
        """Serialise a mapping to JSON and store it, base64-encoded or not.

        Nothing is stored when ``dict_`` is ``None`` or empty. The JSON is produced by
        ``json.dumps(dict_, ensure_ascii=False, default=json_encoder)``; when encoding, the
        UTF-8 bytes are URL-safe base64 encoded with ``=`` padding.

        Args:
            dict_: The JSON object to store.
            encode_base64: Whether to base64-encode the JSON text.
            type_when_encoded: Key used when encoding (e.g. ``"cx"``).
            type_when_not_encoded: Key used otherwise (e.g. ``"co"``).
            json_encoder: ``default=`` hook for values :mod:`json` cannot serialise.

        Raises:
            TypeError: If a value cannot be serialised.
        """
        if not dict_:
            return
        text = dumps(dict_, json_encoder)
        if encode_base64:
            self.nv_pairs[type_when_encoded] = urlsafe_b64(text.encode("utf-8"))
        else:
            self.nv_pairs[type_when_not_encoded] = text

    def get(self) -> PayloadDict:
        """Return the underlying dict (not a copy).

        Returns:
            ``nv_pairs``.
        """
        return self.nv_pairs

    def __repr__(self) -> str:
        return f"Payload({self.nv_pairs!r})"
