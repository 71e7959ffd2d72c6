"""What a file holds as Python: a module, or the code cells of a Jupyter notebook.

The analysis only sees Python source. A notebook's code cells are joined into one
module (so an import in cell 1 resolves names in cell 3), each cell preceded by a
marker comment, and IPython magics (`%time`, `!pip`) turned into marker comments.
Findings are then moved back to (cell, line in cell), and after fixing, the module
is split at the markers: only cells whose code changed are rewritten, with their
outputs and metadata, and the magics, as they were.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from devlint.findings import Edit, Finding, Fix, Location

_CELL = "# devlint: cell {}"
_MAGIC = "# devlint: magic {}"
_MARKER = re.compile(r"^# devlint: (cell|magic) (\d+)$")


class NotANotebook(ValueError):
    """The .ipynb file is not valid notebook JSON."""


# IPython commands that work without `%` (automagic), as they start a line in notebooks.
_AUTOMAGIC = re.compile(r"^(cd|ls|pwd|pip|conda|mkdir|rm|cp|mv|cat|env|who|whos|load_ext|matplotlib)(\s+[^=(\[.,:\s]|\s*$)")


def _is_magic(line: str) -> bool:
    stripped = line.lstrip()
    if stripped.startswith(("%", "!")) or _AUTOMAGIC.match(stripped):
        return True
    return stripped.endswith("?") and not stripped.startswith("#")


@dataclass
class Notebook:
    data: dict
    indent: int | None
    trailing_newline: bool
    code_cells: list[int] = field(default_factory=list)  # positions in data["cells"]
    magics: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # module row of each cell's first line

    @classmethod
    def from_bytes(cls, raw: bytes) -> Notebook:
        try:
            text = raw.decode("utf-8-sig")
            data = json.loads(text)
            cells = data["cells"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise NotANotebook(f"not a Jupyter notebook: {exc}") from exc
        indent = None
        match = re.search(r'\n( +)"', text)
        if match:
            indent = len(match.group(1))
        notebook = cls(data, indent, text.endswith("\n"))
        notebook.code_cells = [i for i, cell in enumerate(cells) if isinstance(cell, dict) and cell.get("cell_type") == "code"]
        return notebook

    @staticmethod
    def _cell_text(cell: dict) -> str:
        source = cell.get("source", "")
        return "".join(source) if isinstance(source, list) else str(source)

    def python(self) -> str:
        """The code cells as one module, with marker comments (see the module docstring)."""
        lines: list[str] = []
        self.magics, self.starts = [], []
        for number, index in enumerate(self.code_cells, start=1):
            lines.append(_CELL.format(number))
            self.starts.append(len(lines) + 1)
            text = self._cell_text(self.data["cells"][index])
            cell_lines = text.split("\n")
            if cell_lines and cell_lines[0].lstrip().startswith("%%"):  # a cell magic: not Python
                cell_lines = [self._magic(line) for line in cell_lines]
            else:
                kept, continued = [], False
                for line in cell_lines:
                    magic = continued or _is_magic(line)
                    kept.append(self._magic(line) if magic else line)
                    continued = magic and line.rstrip().endswith("\\")  # `!cmd \` goes on
                cell_lines = kept
            lines.extend(cell_lines)
        return "\n".join(lines) + "\n"

    def _magic(self, line: str) -> str:
        self.magics.append(line)
        return _MAGIC.format(len(self.magics) - 1)

    def locate(self, row: int) -> tuple[int, int]:
        """Module row -> (1-based code cell number, row within the cell)."""
        cell = 0
        for number, start in enumerate(self.starts, start=1):
            if start <= row:
                cell = number
        return cell, row - self.starts[cell - 1] + 1 if cell else row

    def to_cells(self, finding: Finding) -> Finding:
        """A finding on the joined module, moved to its cell."""
        cell, row = self.locate(finding.location.row)
        _, end_row = self.locate(finding.end_location.row)

        def move(loc: Location) -> Location:
            return Location(self.locate(loc.row)[1], loc.column)

        fix = finding.fix
        if fix is not None:
            fix = Fix(fix.applicability, fix.message, tuple(Edit(e.content, move(e.location), move(e.end_location)) for e in fix.edits))
        return replace(
            finding,
            location=Location(row, finding.location.column),
            end_location=Location(end_row, finding.end_location.column),
            noqa_row=row,
            cell=cell,
            fix=fix,
        )

    def with_python(self, module: str) -> bytes:
        """The notebook with each code cell replaced by its part of `module`, where it changed."""
        pieces: dict[int, list[str]] = {}
        current = None
        for line in module.split("\n"):
            marker = _MARKER.match(line)
            if marker and marker.group(1) == "cell":
                current = int(marker.group(2))
                pieces[current] = []
            elif current is not None:
                pieces[current].append(self.magics[int(marker.group(2))] if marker else line)
        cells = self.data["cells"]
        for number, index in enumerate(self.code_cells, start=1):
            lines = pieces.get(number, [])
            if lines and lines[-1] == "" and number == len(self.code_cells):
                lines = lines[:-1]  # the module's final newline
            new = "\n".join(lines)
            cell = cells[index]
            if new == self._cell_text(cell):
                continue
            if isinstance(cell.get("source"), list):
                cell["source"] = [line + "\n" for line in new.split("\n")[:-1]] + [new.split("\n")[-1]]
                if cell["source"][-1] == "":
                    cell["source"].pop()
            else:
                cell["source"] = new
        text = json.dumps(self.data, indent=self.indent, ensure_ascii=False)
        return (text + ("\n" if self.trailing_newline else "")).encode("utf-8")


def python_of(filename: str, raw: bytes) -> tuple[bytes, Notebook | None]:
    """The Python source bytes a file holds, and its notebook when it is one.
    Raises NotANotebook for an .ipynb file that is not notebook JSON."""
    if not filename.endswith(".ipynb"):
        return raw, None
    notebook = Notebook.from_bytes(raw)
    return notebook.python().encode("utf-8"), notebook
