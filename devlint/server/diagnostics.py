"""Findings as LSP diagnostics, and diagnostics kept across edits while a text does not parse."""

from __future__ import annotations

from typing import Callable

import attrs
from lsprotocol import types

from devlint.server import checking
from devlint.server.documents import View
from devlint.server.positions import Lines

SOURCE = "devlint"


def _message(f: checking.Finding) -> str:
    lines = [f.message]
    seen = f.runtime or {}
    if seen.get("count"):
        lines[0] += f"  [confirmed at runtime: {seen['count']}x on {', '.join(seen.get('devices', []))}]"
    elif seen.get("exercised"):
        lines[0] += "  [ran at runtime without leaking]"
    if f.fix is not None and f.fix.message:
        grade = "" if f.fix.applicability is checking.Applicability.SAFE else f" ({f.fix.applicability.value})"
        lines.append(f"fix{grade}: {f.fix.message}")
    lines.extend(f"note: {note}" for note in f.notes)
    return "\n".join(lines)


def _severity(f: checking.Finding) -> types.DiagnosticSeverity:
    """Errors: a leak the runtime saw, a file devlint cannot read; warnings otherwise."""
    if f.code == checking.UNPARSABLE or (f.runtime and f.runtime.get("count")):
        return types.DiagnosticSeverity.Error
    return types.DiagnosticSeverity.Warning


def to_diagnostic(f: checking.Finding, view: View, lines: dict[str, Lines]) -> tuple[str, types.Diagnostic]:
    """The editor document a finding lies in, and its diagnostic there."""
    uri, start = view.place(f.location)
    end_uri, end = view.place(f.end_location)
    if end_uri != uri or end < start:  # never spans cells; clamp to the start's line
        end = checking.Location(start.row, len(lines[uri].line(start.row)) + 1)
    url = checking.rule_url(f.code)
    return uri, types.Diagnostic(
        range=lines[uri].range(start, end),
        message=_message(f),
        severity=_severity(f),
        code=f.code,
        code_description=types.CodeDescription(href=url) if url else None,
        source=SOURCE,
    )


def _after(a: types.Position, b: types.Position) -> bool:
    return (a.line, a.character) >= (b.line, b.character)


def _moved(position: types.Position, change: types.Range, inserted: str, units: Callable[[str], int]) -> types.Position:
    """A position after the changed range, once the range reads `inserted`."""
    parts = inserted.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    line = position.line + len(parts) - 1 - (change.end.line - change.start.line)
    if position.line != change.end.line:
        return types.Position(line, position.character)
    base = change.start.character if len(parts) == 1 else 0
    return types.Position(line, position.character - change.end.character + base + units(parts[-1]))


def follow_edit(kept: list[types.Diagnostic], change: types.Range, inserted: str, units: Callable[[str], int]) -> list[types.Diagnostic]:
    """Kept diagnostics after one text edit: those before it stay, those after it move with
    the text, those it touched are dropped (they may no longer be true)."""
    out = []
    for d in kept:
        if _after(change.start, d.range.end):
            out.append(d)
        elif _after(d.range.start, change.end):
            rng = types.Range(_moved(d.range.start, change, inserted, units), _moved(d.range.end, change, inserted, units))
            out.append(attrs.evolve(d, range=rng))
    return out
