"""Structural fixes as libcst codemods: a device parameter added to functions, passed at
their call sites in any file of the project.

Analysis stays on `ast` (about 20x cheaper to parse); libcst parses only the files a
chosen structural fix touches, and keeps what a text edit could not: multi-line
signatures, decorators, `*args`, keyword-only and positional-only markers, trailing
commas and comments. A rewrite is then expressed as text edits (edits.py), so every
fix, structural or not, is shown, serialised and applied the same way. libcst is
imported only when a rewrite is made: without it, the text fixes still work.
"""

from __future__ import annotations

from devlint.codemod.edits import text_edits
from devlint.codemod.errors import CodemodError
from devlint.findings import Operation


def rewrite(text: str, operations: list[Operation], filename: str) -> str:
    """`text` with `operations` carried out. Raises CodemodError, never leaves half of them;
    ImportError when libcst is not installed."""
    from devlint.codemod.transform import rewrite as with_libcst

    return with_libcst(text, operations, filename)


def rewrite_statements(text: str, operations: list[Operation], filename: str) -> list[tuple[int, str, str]] | None:
    """`rewrite` as the runs of top-level statements it changes (transform.rewrite_statements)."""
    from devlint.codemod.transform import rewrite_statements as with_libcst

    return with_libcst(text, operations, filename)


__all__ = ["CodemodError", "rewrite", "rewrite_statements", "text_edits"]
