"""The user's cache directory, shared by what devlint keeps between runs outside a project:
library summaries (libraries/cache.py) and the parsed rule catalog (catalog.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def directory() -> Path:
    """`DEVLINT_CACHE_DIR`, else `$XDG_CACHE_HOME/devlint` (`%LOCALAPPDATA%\\devlint` on Windows)."""
    override = os.environ.get("DEVLINT_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "devlint"
