"""A rewritten file as text edits: whole changed lines, so they read as a diff does."""

from __future__ import annotations

import difflib
import re

from devlint.findings import Edit, Location

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")  # rows exactly as ast and Source count them


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def text_edits(old: str, new: str, filename: str | None = None, first_row: int = 1) -> list[Edit]:
    """Edits that turn `old` into `new`; `filename` is set on each (None: the finding's file).
    `first_row`: the row of the file where `old` begins (a part of the file)."""
    before, after = _lines(old), _lines(new)
    edits = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(Edit("".join(after[j1:j2]), Location(i1 + first_row, 1), Location(i2 + first_row, 1), filename))
    return edits
