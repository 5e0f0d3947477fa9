"""Fixtures of the delivery tests."""

from __future__ import annotations

from tests.support.emitter_cleanup import stop_emitters_after_each_test  # noqa: F401 (autouse)
