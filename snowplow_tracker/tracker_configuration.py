"""Configuration of a tracker built by :meth:`Snowplow.create_tracker`."""

from __future__ import annotations

from typing import Optional, cast

from snowplow_tracker.typing import JsonEncoderFunction


class TrackerConfiguration:
    """Settings of a tracker.

    Args:
        encode_base64: Whether JSON fields are base64-encoded (``cx``/``ue_px``) rather
            than sent raw (``co``/``ue_pr``).
        json_encoder: ``default=`` hook used when serialising contexts and
            self-describing events.

    Raises:
        TypeError: If ``encode_base64`` is not a bool (or ``None``) or ``json_encoder``
            is not callable.
    """

    def __init__(
        self,
        encode_base64: bool = True,
        json_encoder: Optional[JsonEncoderFunction] = None,
    ) -> None:
        self.encode_base64 = encode_base64
        self.json_encoder = json_encoder

    @property
    def encode_base64(self) -> bool:
        """Whether JSON fields are base64-encoded (default ``True``)."""
        return cast(bool, self._encode_base64)

    @encode_base64.setter
    def encode_base64(self, value: Optional[bool]) -> None:
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"encode_base64 must be a bool, not {type(value).__name__}.")
        self._encode_base64 = value

    @property
    def json_encoder(self) -> Optional[JsonEncoderFunction]:
        """The ``default=`` hook for JSON serialisation, or ``None``."""
        return self._json_encoder

    @json_encoder.setter
    def json_encoder(self, value: Optional[JsonEncoderFunction]) -> None:
        if value is not None and not callable(value):
            raise TypeError(f"json_encoder must be callable, not {type(value).__name__}.")
        self._json_encoder = value
