"""Suppression comments: `# noqa`, `# noqa: DL001, DL005` and file-level `# devlint: noqa`.

Comments are found with the tokenizer, so a `# noqa` inside a string does not count.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

_CODE = r"[A-Z]+[0-9]+"
_LINE = re.compile(rf"#\s*noqa(?::\s*(?P<codes>{_CODE}(?:[\s,]+{_CODE})*))?", re.I)
_FILE = re.compile(rf"#\s*devlint\s*:\s*noqa(?::\s*(?P<codes>{_CODE}(?:[\s,]+{_CODE})*))?\s*$", re.I)

_ANY = re.compile("noqa", re.I)
ALL = frozenset({"*"})


def _codes(text: str | None) -> frozenset[str]:
    if not text:
        return ALL
    return frozenset(c.upper() for c in re.findall(_CODE, text, re.I))


@dataclass
class Suppressions:
    file: frozenset[str] = frozenset()
    lines: dict[int, frozenset[str]] = field(default_factory=dict)

    def suppresses(self, code: str, *rows: int) -> bool:
        """Suppressed for the file, or by a `# noqa` on any of `rows`."""
        if "*" in self.file or code in self.file:
            return True
        for row in rows:
            codes = self.lines.get(row)
            if codes is not None and ("*" in codes or code in codes):
                return True
        return False


def _comments(text: str):
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                yield tok.start[0], tok.string
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return


def parse(text: str) -> Suppressions:
    found = Suppressions()
    if not _ANY.search(text):
        return found
    file_codes: set[str] = set()
    for row, comment in _comments(text):
        match = _FILE.search(comment)
        if match:
            file_codes |= _codes(match.group("codes"))
            continue
        match = _LINE.search(comment)
        if match:
            found.lines[row] = found.lines.get(row, frozenset()) | _codes(match.group("codes"))
    found.file = frozenset(file_codes)
    return found
