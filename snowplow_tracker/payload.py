"""The flat name/value payload of one event."""

from __future__ import annotations

import base64 as _base64
import json
from typing import Any, Optional, Tuple

from snowplow_tracker.typing import JsonEncoderFunction, PayloadDict

# Encoders equivalent to ``json.dumps(obj, ensure_ascii=False, default=json_encoder)``,
# built once instead of on every call. A JSONEncoder keeps no state between calls.
_PLAIN_ENCODER = json.JSONEncoder(ensure_ascii=False)
_last_custom_encoder: Tuple[Optional[JsonEncoderFunction], json.JSONEncoder] = (
    None,
    _PLAIN_ENCODER,
)


def _encoder_for(json_encoder: Optional[JsonEncoderFunction]) -> json.JSONEncoder:
    global _last_custom_encoder
    if json_encoder is None:
        return _PLAIN_ENCODER
    cached_function, cached_encoder = _last_custom_encoder
    if cached_function is json_encoder:
        return cached_encoder
    encoder = json.JSONEncoder(ensure_ascii=False, default=json_encoder)
    _last_custom_encoder = (json_encoder, encoder)
    return encoder


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
        nv_pairs = self.nv_pairs
        for name, value in dict_.items():
            if value is None or (isinstance(value, str) and not value):
                continue
            nv_pairs[name] = value

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
        text = _encoder_for(json_encoder).encode(dict_)
        if encode_base64:
            encoded = _base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")
            self.nv_pairs[type_when_encoded] = encoded
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
