"""A rewritten file as text edits: whole changed lines, so they read as a diff does."""

from __future__ import annotations

import difflib
import re

from devlint.findings import Edit, Location

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")  # rows exactly as ast and Source count them


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def text_edits(old: str, new: str, filename: str | None = None) -> list[Edit]:
    """Edits that turn `old` into `new`; `filename` is set on each (None: the finding's file)."""
    before, after = _lines(old), _lines(new)
    edits = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(Edit("".join(after[j1:j2]), Location(i1 + 1, 1), Location(i2 + 1, 1), filename))
    return edits
