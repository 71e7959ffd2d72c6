"""The vocabulary both halves report in: a finding at a place in a file, with a fix.

Positions follow ruff's JSON contract: rows and columns are 1-based, columns count
characters (not bytes). A fix is a list of text edits, so it can be shown as a diff,
serialised to JSON and applied without re-running the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Applicability(str, Enum):
    """How safe a fix is, graded as ruff grades them."""

    SAFE = "safe"  # only moves data to the device the program already chose
    UNSAFE = "unsafe"  # may change behaviour; applied with --unsafe-fixes
    DISPLAY_ONLY = "display-only"  # a suggestion, never applied


@dataclass(frozen=True, order=True)
class Location:
    row: int
    column: int

    def to_json(self) -> dict:
        return {"row": self.row, "column": self.column}


@dataclass(frozen=True)
class Edit:
    """Replace the text between two locations (end exclusive) with `content`."""

    content: str
    location: Location
    end_location: Location

    def to_json(self) -> dict:
        return {
            "content": self.content,
            "location": self.location.to_json(),
            "end_location": self.end_location.to_json(),
        }


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...] = ()

    @property
    def applicable(self) -> bool:
        return bool(self.edits) and self.applicability is not Applicability.DISPLAY_ONLY

    def to_json(self) -> dict:
        return {
            "applicability": self.applicability.value,
            "message": self.message,
            "edits": [e.to_json() for e in self.edits],
        }


@dataclass
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

    @property
    def sort_key(self) -> tuple:
        return (self.filename, self.cell or 0, self.location, self.code)
