"""The vocabulary both halves report in: a finding at a place in a file, with a fix.

Positions follow ruff's JSON contract: rows and columns are 1-based, columns count
characters (not bytes). A fix is a list of text edits, so it can be shown as a diff,
serialised to JSON and applied without re-running the analysis. A structural fix (a
device parameter threaded through a call chain, across files) starts as a Threading
request and becomes a plan of Operations; the codemod stage turns the plan into edits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Applicability(str, Enum):
    """How safe a fix is, graded as ruff grades them."""

    SAFE = "safe"  # only moves data to the device the program already chose
    UNSAFE = "unsafe"  # may change behaviour; applied with --unsafe-fixes
    DISPLAY_ONLY = "display-only"  # a suggestion, never applied


@dataclass(frozen=True, order=True, slots=True)  # slots: two per finding, a third of its memory
class Location:
    row: int
    column: int

    def to_json(self) -> dict:
        return {"row": self.row, "column": self.column}


@dataclass(frozen=True)
class Edit:
    """Replace the text between two locations (end exclusive) with `content`; in
    `filename` when that is not the finding's own file (a multi-file fix)."""

    content: str
    location: Location
    end_location: Location
    filename: str | None = None

    def to_json(self) -> dict:
        data = {
            "content": self.content,
            "location": self.location.to_json(),
            "end_location": self.end_location.to_json(),
        }
        if self.filename is not None:
            data["filename"] = self.filename
        return data


# --- structural fixes ------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Span:
    """Where a node of a file is: (row, column) of its start and end, as Location counts."""

    filename: str
    start: tuple[int, int]
    end: tuple[int, int]


@dataclass(frozen=True, order=True)
class AddParameter:
    """Give the function defined at `span` (its `def` line to its name's end) a parameter
    `name=default`, passed by keyword."""

    span: Span
    function: str
    name: str
    default: str


@dataclass(frozen=True, order=True)
class AddArgument:
    """Pass `value` to the call at `span`: as `keyword=value`, or as its only positional
    argument when `keyword` is None (`.cuda()` -> `.cuda(device)`)."""

    span: Span
    keyword: str | None
    value: str


Operation = AddParameter | AddArgument


@dataclass(frozen=True)
class Threading:
    """A fix that needs a device where the code has none: thread one in from the callers.

    Made by a check (which sees one file) and planned by the check pipeline's thread stage
    (which sees the project): `target` is the function that gains the parameter, `site`
    the operations that use it there. `plan` holds every operation once planned, up the
    call chain and across files; `None` until then."""

    target: Span  # the function's `def` line to the end of its name
    function: str  # its qualified name
    parameter: str
    default: str
    site: tuple[Operation, ...]
    type_string: str | None = None  # the helper's parameter that receives `x.type()`
    plan: tuple[Operation, ...] | None = None

    @property
    def files(self) -> list[str]:
        return sorted({op.span.filename for op in self.plan or self.site})


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...] = ()
    threading: Threading | None = None

    @property
    def applicable(self) -> bool:
        structural = self.threading is not None and self.threading.plan is not None
        return (bool(self.edits) or structural) and self.applicability is not Applicability.DISPLAY_ONLY

    def to_json(self) -> dict:
        return {
            "applicability": self.applicability.value,
            "message": self.message,
            "edits": [e.to_json() for e in self.edits],
        }


@dataclass(frozen=True)
class Library:
    """Which library a finding's knowledge came from: its installed source (`source` is
    "installed", `version` the installed one, `python` the environment's interpreter), or
    devlint's hand table when it is not installed ("table", `version` the versions the
    table describes)."""

    name: str
    version: str
    source: str
    python: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "source": self.source, "python": self.python}


@dataclass(slots=True)  # slots: a file may have 200,000 findings
class Finding:
    code: str
    message: str
    filename: str
    location: Location
    end_location: Location
    fix: Fix | None = None
    noqa_row: int | None = None
    cell: int | None = None
    # What a runtime report saw at this site (filled by `check --runtime-report`).
    runtime: dict | None = None
    # Extra detail (not part of the message) shown under the finding in text output.
    notes: tuple[str, ...] = field(default=())
    # The library version whose source (or table) the finding relies on (DL012).
    library: Library | None = None

    @property
    def sort_key(self) -> tuple:
        return (self.filename, self.cell or 0, self.location, self.code)
