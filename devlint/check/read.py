"""Reading the files to check: bytes, notebooks turned into Python, and DL901 for files
that cannot be read (a FIFO, a permission error, a broken notebook) instead of an error."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from functools import cached_property

from devlint.check.cache import content_key
from devlint.check.discover import SourceFile
from devlint.findings import Finding, Location
from devlint.static import analyze
from devlint.static.document import Notebook, NotANotebook, python_of


@dataclass
class Work:
    """One file's bytes (or the finding saying why it could not be read) and cache key."""

    file: SourceFile
    data: bytes | None  # Python source (a notebook's code cells joined)
    error: Finding | None
    key: str = ""  # hash of the file's bytes as stored
    notebook: Notebook | None = None

    def for_user(self, findings: list[Finding]) -> list[Finding]:
        """Findings as the user sees the file: notebook findings move to their cells."""
        return [self.notebook.to_cells(f) for f in findings] if self.notebook else findings

    @cached_property
    def text(self) -> str:
        return self.data.decode("latin-1")  # enough to search for ASCII trigger words


def read(file: SourceFile) -> Work:
    loc = Location(1, 1)
    try:
        if not stat.S_ISREG(os.stat(file.path).st_mode):  # a FIFO or device would block or never end
            error = Finding(analyze.UNPARSABLE, "cannot read file: not a regular file", file.display, loc, loc)
            return Work(file, None, error)
        raw = file.path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Work(file, None, Finding(analyze.UNPARSABLE, f"cannot read file: {reason}", file.display, loc, loc))
    return from_bytes(file, raw)


def from_bytes(file: SourceFile, raw: bytes) -> Work:
    """A file's work from its content as stored (also new content the fix stage wrote)."""
    loc = Location(1, 1)
    try:
        data, notebook = python_of(file.display, raw)
    except NotANotebook as exc:
        return Work(file, None, Finding(analyze.UNPARSABLE, str(exc), file.display, loc, loc))
    return Work(file, data, None, content_key(raw), notebook)
