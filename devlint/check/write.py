"""Writing fixed files: each atomically, and the files of one fix all or none.

A file is replaced by renaming a temporary file over it (so a reader never sees half
of it), with its permissions kept and through a symlink to its target. A multi-file
fix is written as a unit: every new content is written to its temporary file first,
then the renames; if one rename fails, the files already replaced get their old
content back, so a crash of the disk or a read-only file leaves no half-fixed project.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class WriteError(Exception):
    """A unit of files that could not be written; none of them changed."""


def _temporary(path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".devlint", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_all(changes: dict[Path, bytes]) -> None:
    """Replace every file in `changes`, or none of them (raises WriteError)."""
    targets = {Path(os.path.realpath(path)): data for path, data in changes.items()}
    originals: dict[Path, bytes] = {}
    temporaries: dict[Path, str] = {}
    try:
        for path, data in targets.items():
            originals[path] = path.read_bytes()
            temporaries[path] = _temporary(path, data)
    except (OSError, UnicodeError) as exc:
        for tmp in temporaries.values():
            _remove(tmp)
        raise WriteError(str(exc)) from exc
    replaced: list[Path] = []
    try:
        for path, tmp in temporaries.items():
            os.replace(tmp, path)
            replaced.append(path)
    except OSError as exc:
        for path in replaced:
            try:
                tmp = _temporary(path, originals[path])
                os.replace(tmp, path)
            except OSError:
                pass
        for path, tmp in temporaries.items():
            if path not in replaced:
                _remove(tmp)
        raise WriteError(str(exc)) from exc
