"""The interpreters the benchmark runs: ours, snowplow-tracker 1.1.0, Segment, and a plotter.

Each implementation lives in its own virtual environment and runs in its own process:

* ours: the interpreter running the harness (the project venv, with this package installed);
* snowplow-tracker 1.1.0 from PyPI: ``tests/support/reference_env.py`` builds and caches it
  under ``.cache/`` (set ``SNOWPLOW_REFERENCE_PYTHON`` to reuse another interpreter);
* ``segment-analytics-python`` (peer row): built here the same way under ``.cache/``;
* matplotlib, only to draw the chart: a separate cached venv, so it never becomes a
  dependency of the package or of its test environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = REPO_ROOT / ".cache"
SEGMENT_VERSION = "2.4.0"
SEGMENT_ENV = CACHE / f"peer-segment-analytics-python-{SEGMENT_VERSION}"
PLOT_ENV = CACHE / "benchmarks-plot"


def _python_in(env_dir: Path) -> Path:
    return env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"


def _probe(python: Path, code: str) -> Optional[str]:
    """Run ``code`` isolated with ``python``; its stdout, or None if it failed."""
    if not python.exists():
        return None
    try:
        result = subprocess.run(
            [str(python), "-I", "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tempfile.gettempdir(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _build(env_dir: Path, requirements: List[str]) -> Path:
    from tests.support.reference_env import build_venv

    return build_venv(env_dir, requirements)


def our_python() -> Path:
    """This package: the interpreter running the harness."""
    return Path(sys.executable)


def reference_python() -> Path:
    """snowplow-tracker 1.1.0 from PyPI, via the test suite's cached environment."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.support.reference_env import reference_python as build_reference

    return build_reference()


SEGMENT_PROBE = (
    "from segment.analytics.version import VERSION; import sys; sys.stdout.write(VERSION)"
)


def segment_python() -> Path:
    """``segment-analytics-python`` in a cached venv under ``.cache/`` (built on first use)."""
    python = _python_in(SEGMENT_ENV)
    if _probe(python, SEGMENT_PROBE) == SEGMENT_VERSION:
        return python
    python = _build(SEGMENT_ENV, [f"segment-analytics-python=={SEGMENT_VERSION}"])
    if _probe(python, SEGMENT_PROBE) != SEGMENT_VERSION:
        raise RuntimeError(f"could not install segment-analytics-python=={SEGMENT_VERSION}")
    return python


def plot_python() -> Path:
    """An interpreter with matplotlib (a cached venv under ``.cache/``, built on first use)."""
    probe = "import matplotlib, sys; sys.stdout.write(matplotlib.__version__)"
    if _probe(Path(sys.executable), probe):
        return Path(sys.executable)
    python = _python_in(PLOT_ENV)
    if _probe(python, probe):
        return python
    python = _build(PLOT_ENV, ["matplotlib>=3.5"])
    if not _probe(python, probe):
        raise RuntimeError("could not install matplotlib")
    return python
