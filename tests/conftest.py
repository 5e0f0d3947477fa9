"""Shared test configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.reference_env import reference_python

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_IGLU = REPO_ROOT.parent / "shared" / "iglu"


@pytest.fixture(scope="session")
def reference_env_python() -> Path:
    """Interpreter of a separate virtual environment with snowplow-tracker 1.1.0 from PyPI."""
    return reference_python()


@pytest.fixture(scope="session")
def shared_iglu_dir() -> Path:
    """The published Iglu schemas in ../shared/iglu (read-only test data)."""
    if not (SHARED_IGLU / "schemas").is_dir():
        pytest.skip("../shared/iglu is not present")
    return SHARED_IGLU
