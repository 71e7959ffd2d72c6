"""A Python source file as devlint reads it: bytes, decoded text, lines and positions.

Decoding follows PEP 263 and the BOM (as the interpreter does), and the original
newline style is kept, so a fix can be written back byte-for-byte around its edits.
The `ast` module reports columns as UTF-8 byte offsets; everything devlint shows
uses character columns, converted here.
"""

from __future__ import annotations

import codecs
import functools
import io
import itertools
import re
import tokenize
from dataclasses import dataclass, field

from devlint.findings import Location

_NEWLINE = re.compile(r"\r\n|\r|\n")


class UndecodableSource(Exception):
    def __init__(self, message: str, row: int = 1):
        super().__init__(message)
        self.row = row


@dataclass
class Source:
    text: str
    encoding: str = "utf-8"
    bom: bool = False
    _line_starts: list[int] | None = field(default=None, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> Source:
        if b"\x00" in data[:8192]:
            raise UndecodableSource("binary file (contains NUL bytes)")
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as exc:
            raise UndecodableSource(f"bad encoding declaration: {exc.msg}", exc.lineno or 1) from exc
        bom = data.startswith(codecs.BOM_UTF8)
        body = data[len(codecs.BOM_UTF8):] if bom else data
        codec = "utf-8" if encoding == "utf-8-sig" else encoding
        try:
            text = body.decode(codec)
        except UnicodeDecodeError as exc:
            row = body[: exc.start].count(b"\n") + 1
            raise UndecodableSource(f"cannot decode as {codec}: {exc.reason}", row) from exc
        return cls(text=text, encoding=codec, bom=bom)

    def to_bytes(self, text: str | None = None) -> bytes:
        body = (self.text if text is None else text).encode(self.encoding)
        return codecs.BOM_UTF8 + body if self.bom else body

    @property
    def newline(self) -> str:
        match = _NEWLINE.search(self.text)
        return match.group() if match else "\n"

    @property
    def line_starts(self) -> list[int]:
        """Offset in `text` where each physical line starts (index 0 is row 1)."""
        if self._line_starts is None:
            text = self.text
            if "\r" in text:
                starts = [0]
                starts.extend(m.end() for m in _NEWLINE.finditer(text))
            else:  # each line's length plus its newline, summed in C: a third of the regex's time
                starts = list(itertools.accumulate(map((1).__add__, map(len, text.split("\n")[:-1])), initial=0))
            self._line_starts = starts
        return self._line_starts

    @functools.cached_property
    def ascii(self) -> bool:
        return self.text.isascii()

    def line(self, row: int) -> str:
        """Physical line `row` (1-based) without its newline."""
        starts = self.line_starts
        if not 1 <= row <= len(starts):
            return ""
        end = starts[row] if row < len(starts) else len(self.text)
        return self.text[starts[row - 1] : end].rstrip("\r\n")

    def location(self, lineno: int, byte_col: int) -> Location:
        """ast (1-based line, UTF-8 byte column) -> 1-based character location."""
        if self.ascii:  # bytes are characters: no line to look at
            return Location(lineno, byte_col + 1)
        line = self.line(lineno)
        if line.isascii():
            return Location(lineno, byte_col + 1)
        return Location(lineno, len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace")) + 1)

    def offset(self, loc: Location) -> int:
        """Character offset in `text` of a location."""
        starts = self.line_starts
        if loc.row > len(starts):
            return len(self.text)
        return starts[loc.row - 1] + loc.column - 1

    def between(self, lineno: int, byte_col: int, end_lineno: int, end_byte_col: int) -> str:
        """The text between two ast positions: segment(location(...), location(...)), without
        building the locations where bytes are characters (a node's text, asked per finding)."""
        if not self.ascii:
            return self.segment(self.location(lineno, byte_col), self.location(end_lineno, end_byte_col))
        starts = self.line_starts
        rows = len(starts)
        start = starts[lineno - 1] + byte_col if lineno <= rows else len(self.text)
        end = starts[end_lineno - 1] + end_byte_col if end_lineno <= rows else len(self.text)
        return self.text[start:end]

    def segment(self, start: Location, end: Location) -> str:
        return self.text[self.offset(start) : self.offset(end)]
