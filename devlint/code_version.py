"""Which devlint code made a cached result: its version alone does not say.

An editable or git install changes devlint's source under an unchanged version, and a
result cached by the old code would be replayed as if the new code had made it. The size
and modification time of each of devlint's own source files (stat only, a millisecond)
are part of the result cache's key (check/cache.py). The library summaries, shared by every
install of devlint, keep their own FORMAT instead (libraries/cache.py).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from devlint import __version__

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def fingerprint() -> str:
    """devlint's version and the fingerprint of its source files."""
    return f"{__version__}+{fingerprint_of(PACKAGE)}"


def fingerprint_of(root: Path) -> str:
    """A hash of the relative path, size and modification time of every .py file under `root`
    (__pycache__ left out: byte code is written as devlint runs)."""
    stamps = []
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    stat = entry.stat()
                    stamps.append(f"{os.path.relpath(entry.path, root)}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.blake2b("\n".join(sorted(stamps)).encode(), digest_size=16).hexdigest()
