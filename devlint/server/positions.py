"""Positions as the protocol counts them.

devlint counts 1-based rows and 1-based characters; LSP counts 0-based lines and 0-based
code units of the negotiated encoding (UTF-16 unless the client offers another), and
breaks lines only at \\n, \\r\\n and \\r. pygls splits a document's lines with
`str.splitlines`, which also breaks at form feeds and other separators Python sources
contain (a `^L` page break), putting every later edit on the wrong line; `Workspace`
here keeps pygls's documents to the protocol's line breaks.
"""

from __future__ import annotations

import re

from lsprotocol import types
from pygls.workspace import TextDocument
from pygls.workspace import Workspace as PyglsWorkspace
from pygls.workspace.position_codec import PositionCodec

from devlint.server.checking import Location

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class _ProtocolLinesDocument(TextDocument):
    @property
    def lines(self):
        return tuple(_LINE_WITH_END.findall(self.source))


class Workspace(PyglsWorkspace):
    def _create_text_document(self, doc_uri, source=None, version=None, language_id=None):
        return _ProtocolLinesDocument(
            doc_uri, source=source, version=version, language_id=language_id,
            sync_kind=self._sync_kind, position_codec=self._position_codec,
        )


class Lines:
    """One document's lines, for converting positions both ways."""

    def __init__(self, text: str, codec: PositionCodec):
        self.lines = _NEWLINE.split(text)
        self.codec = codec

    def _units(self, text: str) -> int:
        return len(text) if text.isascii() else self.codec.client_num_units(text)

    def position(self, location: Location) -> types.Position:
        line = location.row - 1
        if line >= len(self.lines):
            return types.Position(len(self.lines) - 1, self._units(self.lines[-1]))
        return types.Position(line, self._units(self.lines[line][: max(location.column - 1, 0)]))

    def range(self, start: Location, end: Location) -> types.Range:
        return types.Range(self.position(start), self.position(end))

    def location(self, position: types.Position) -> Location:
        if position.line >= len(self.lines):
            return Location(len(self.lines), len(self.lines[-1]) + 1)
        text = self.lines[position.line]
        if text.isascii():
            return Location(position.line + 1, min(position.character, len(text)) + 1)
        units = 0
        for column, char in enumerate(text):
            if units >= position.character:
                return Location(position.line + 1, column + 1)
            units += self.codec.client_num_units(char)
        return Location(position.line + 1, len(text) + 1)

    def units(self, text: str) -> int:
        """Length of `text` in the client's code units."""
        return self._units(text)

    def line(self, row: int) -> str:
        """1-based row, without its line break ('' past the end)."""
        return self.lines[row - 1] if 1 <= row <= len(self.lines) else ""
