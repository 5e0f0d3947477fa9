"""The subject of events: the user, device and environment an event is about."""

from __future__ import annotations

from typing import Optional

from snowplow_tracker.contracts import greater_than, one_of
from snowplow_tracker.typing import SUPPORTED_PLATFORMS, PayloadDict, SupportedPlatform

__all__ = ["DEFAULT_PLATFORM", "SUPPORTED_PLATFORMS", "Subject"]

DEFAULT_PLATFORM = "pc"
"""Platform (``p``) of every new :class:`Subject`."""


class Subject:
    """Properties of the user and device, sent with events.

    A subject starts as ``{"p": "pc"}``. Every setter returns the subject so calls chain.
    A tracker has a subject for all its events; an event may carry its own subject, which
    is merged over the tracker's (see :meth:`combine_subject`). Because every subject
    carries ``p``, an event-level subject sets the platform back to ``"pc"`` unless it
    calls :meth:`set_platform` itself (the behaviour of snowplow-tracker 1.1.0).

    Attributes:
        standard_nv_pairs: The subject's keys and values, as sent (``{"p": "pc", ...}``).
    """

    def __init__(self) -> None:
        self.standard_nv_pairs: PayloadDict = {"p": DEFAULT_PLATFORM}

    def set_platform(self, value: SupportedPlatform) -> Subject:
        """Set the platform (``p``).

        Args:
            value: One of ``pc``, ``tv``, ``mob``, ``cnsl``, ``iot``, ``web``, ``srv``, ``app``.

        Returns:
            This subject.

        Raises:
            ValueError: If the platform is not supported.
        """
        one_of(value, SUPPORTED_PLATFORMS, name="value")
        self.standard_nv_pairs["p"] = value
        return self

    def set_user_id(self, user_id: str) -> Subject:
        """Set the business user ID (``uid``).

        Args:
            user_id: The user ID.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["uid"] = user_id
        return self

    def set_screen_resolution(self, width: int, height: int) -> Subject:
        """Set the screen resolution (``res``) as ``"<width>x<height>"``.

        Args:
            width: Width in pixels, greater than 0.
            height: Height in pixels, greater than 0.

        Returns:
            This subject.

        Raises:
            ValueError: If a dimension is not greater than 0.
        """
        greater_than(width, 0, name="width")
        greater_than(height, 0, name="height")
        self.standard_nv_pairs["res"] = f"{width}x{height}"
        return self

    def set_viewport(self, width: int, height: int) -> Subject:
        """Set the viewport size (``vp``) as ``"<width>x<height>"``.

        Args:
            width: Width in pixels, greater than 0.
            height: Height in pixels, greater than 0.

        Returns:
            This subject.

        Raises:
            ValueError: If a dimension is not greater than 0.
        """
        greater_than(width, 0, name="width")
        greater_than(height, 0, name="height")
        self.standard_nv_pairs["vp"] = f"{width}x{height}"
        return self

    def set_color_depth(self, depth: int) -> Subject:
        """Set the colour depth (``cd``).

        Args:
            depth: Bits per pixel.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["cd"] = depth
        return self

    def set_timezone(self, timezone: str) -> Subject:
        """Set the time zone (``tz``).

        Args:
            timezone: A tz database name such as ``"Europe/London"``.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["tz"] = timezone
        return self

    def set_lang(self, lang: str) -> Subject:
        """Set the language (``lang``).

        Args:
            lang: A language tag such as ``"en"``.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["lang"] = lang
        return self

    def set_domain_user_id(self, duid: str) -> Subject:
        """Set the domain user ID (``duid``).

        Args:
            duid: The domain user ID.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["duid"] = duid
        return self

    def set_domain_session_id(self, sid: str) -> Subject:
        """Set the domain session ID (``sid``).

        Args:
            sid: The session ID.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["sid"] = sid
        return self

    def set_domain_session_index(self, vid: int) -> Subject:
        """Set the domain session index (``vid``).

        Args:
            vid: The number of the current session.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["vid"] = vid
        return self

    def set_ip_address(self, ip: str) -> Subject:
        """Set the IP address (``ip``).

        Args:
            ip: The IP address.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["ip"] = ip
        return self

    def set_useragent(self, ua: str) -> Subject:
        """Set the user agent (``ua``).

        Args:
            ua: The user agent string.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["ua"] = ua
        return self

    def set_network_user_id(self, nuid: str) -> Subject:
        """Set the network user ID (``tnuid``).

        Args:
            nuid: The network user ID.

        Returns:
            This subject.
        """
        self.standard_nv_pairs["tnuid"] = nuid
        return self

    def combine_subject(self, subject: Optional[Subject]) -> PayloadDict:
        """Merge this (event-level) subject over another (tracker-level) one.

        Args:
            subject: The tracker's subject, or ``None``.

        Returns:
            A new dict with the other subject's keys first and this subject's values
            winning; this subject's own ``standard_nv_pairs`` when ``subject`` is ``None``.
        """
        if subject is None:
            return self.standard_nv_pairs
        return {**subject.standard_nv_pairs, **self.standard_nv_pairs}
