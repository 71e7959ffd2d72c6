"""Open documents: what a check sees of each, and what the editor was last told about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types

from devlint.server.checking import Finding, Location, NotebookModule
from devlint.server.project import Result


@dataclass
class View:
    """One version of an open document as devlint checks it: `text` is Python (a
    notebook's code cells joined into one module), `texts` the editor documents it was
    made from (the file, or each cell), so a position in `text` can be placed in them."""

    key: str  # the document's uri (a notebook's, for a notebook)
    version: int | None
    path: Path
    text: str
    texts: dict[str, str]  # editor document uri -> text, in order
    notebook: NotebookModule | None = None

    def place(self, location: Location) -> tuple[str, Location]:
        """The editor document and position holding a position of `text`."""
        if self.notebook is None:
            return self.key, location
        uris = list(self.texts)
        cell, row = self.notebook.locate(location.row)
        if cell < 0:  # a marker line before the first cell
            return uris[0], Location(1, 1)
        rows = self.texts[uris[cell]].count("\n") + 1
        if row > rows:  # past the cell's end: the marker of the next one
            return uris[cell], Location(rows, len(self.texts[uris[cell]].rsplit("\n", 1)[-1]) + 1)
        return uris[cell], Location(row, location.column)


@dataclass
class OpenDocument:
    """The last check of a document, and the diagnostics the editor holds for it.
    `kept`: the diagnostics of the last text that parsed, moved along with later edits,
    shown next to the syntax error while the text does not parse."""

    view: View
    result: Result | None = None
    checked: View | None = None  # the view `result` belongs to
    placed: list[tuple[Finding, str, types.Diagnostic]] = field(default_factory=list)  # of `result`
    planned: dict[int, Finding] = field(default_factory=dict)  # id of a finding of `result` -> with its structural fix planned
    published: dict[str, list[types.Diagnostic]] = field(default_factory=dict)
    kept: dict[str, list[types.Diagnostic]] = field(default_factory=dict)

    @property
    def current(self) -> bool:
        return self.checked is not None and self.checked.version == self.view.version and self.checked.text == self.view.text
