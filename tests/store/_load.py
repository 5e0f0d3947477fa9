"""Import ``snowplow_tracker._sqlite_store`` even while the package ``__init__`` is broken.

The store module only depends on the standard library, so if importing the package fails
(other parts are being rewritten), it is loaded straight from its file.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

MODULE_FILE = Path(__file__).resolve().parents[2] / "snowplow_tracker" / "_sqlite_store.py"


def load_store_module() -> ModuleType:
    """Return the ``_sqlite_store`` module."""
    try:
        from snowplow_tracker import _sqlite_store

        return _sqlite_store
    except Exception:
        name = "_snowplow_sqlite_store_standalone"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, MODULE_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
