"""A separate virtual environment holding the original ``snowplow-tracker`` 1.1.0 from PyPI.

Differential tests run scripts in that environment as subprocesses, so the original package
never shares an interpreter (or an import name) with ours. The environment is built once and
cached under ``.cache/`` at the repository root; set ``SNOWPLOW_REFERENCE_PYTHON`` to reuse an
interpreter that already has ``snowplow-tracker==1.1.0`` installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any, List

REFERENCE_VERSION = "1.1.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / f"reference-snowplow-tracker-{REFERENCE_VERSION}"


def _python_in(env_dir: Path) -> Path:
    return env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"


def build_venv(env_dir: Path, requirements: List[str], timeout: float = 900) -> Path:
    """Create a fresh virtual environment in ``env_dir`` with ``requirements``; its python."""
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = _python_in(env_dir)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements],
        check=True,
        timeout=timeout,
    )  # fmt: skip
    return python


def _has_reference(python: Path) -> bool:
    if not python.exists():
        return False
    probe = "import snowplow_tracker, sys; sys.stdout.write(snowplow_tracker.__version__)"
    result = subprocess.run(
        [str(python), "-I", "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    return result.returncode == 0 and result.stdout.strip() == REFERENCE_VERSION


def reference_python() -> Path:
    """The interpreter of an environment with snowplow-tracker 1.1.0, built if needed."""
    override = os.environ.get("SNOWPLOW_REFERENCE_PYTHON")
    if override:
        return Path(override)
    python = _python_in(CACHE_DIR)
    if _has_reference(python):
        return python
    build_venv(CACHE_DIR, [f"snowplow-tracker=={REFERENCE_VERSION}"], timeout=600)
    if not _has_reference(python):
        raise RuntimeError(f"could not install snowplow-tracker=={REFERENCE_VERSION}")
    return python


def run_script(python: Path | str, script: str, *args: str, timeout: float = 120) -> Any:
    """Run ``script`` (Python source) with ``python`` and return the JSON it printed last on stdout.

    The script runs isolated (``-I``) from a temporary directory, so the interpreter imports
    the ``snowplow_tracker`` installed in its own environment, never the repository's.
    """
    result = subprocess.run(
        [str(python), "-I", "-c", script, *args],
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"script failed with {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def our_python() -> str:
    """The interpreter running the tests (it has this package installed)."""
    return sys.executable
