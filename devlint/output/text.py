"""Text output: `path:line:col: CODE message`, the suggested fix under it, a summary."""

from __future__ import annotations

import click

from devlint.findings import Applicability, Finding


def _style(**styles):
    """click.style(text, **styles) as a function that only joins strings: the codes around
    the text are worked out once, not three times per finding (the same characters: style
    puts the text between them unchanged)."""
    before, after = click.style("\0", **styles).split("\0")
    return lambda text: before + text + after


_BOLD, _CODE, _FIXABLE = _style(bold=True), _style(fg="red", bold=True), click.style("[*] ", fg="cyan")
_FIX, _NOTE, _RUNTIME = _style(fg="green"), _style(fg="blue"), _style(fg="magenta")


def _where(f: Finding) -> str:
    if f.cell is not None:
        return f"{f.filename}:cell {f.cell}:{f.location.row}:{f.location.column}"
    return f"{f.filename}:{f.location.row}:{f.location.column}"


def _mark(f: Finding, unsafe_fixes: bool) -> str:
    if f.fix is None or not f.fix.applicable:
        return ""
    if f.fix.applicability is Applicability.SAFE or unsafe_fixes:
        return _FIXABLE
    return ""


def line(f: Finding, unsafe_fixes: bool = False) -> str:
    head = _BOLD(_where(f)) + ": " + _CODE(f.code)
    out = f"{head} {_mark(f, unsafe_fixes)}{f.message}"
    if f.runtime:
        seen = f.runtime
        out += _RUNTIME(f"  [confirmed at runtime: {seen.get('count', 0)}x on {', '.join(seen.get('devices', []))}]")
    if f.fix is not None and f.fix.message:
        grade = "" if f.fix.applicability is Applicability.SAFE else f" ({f.fix.applicability.value})"
        out += "\n  " + _FIX("fix") + f"{grade}: {f.fix.message}"
    for note in f.notes:
        out += "\n  " + _NOTE("note") + f": {note}"
    return out


def _fixed(fixed: int, changed: list[str]) -> str:
    text = f"Fixed {fixed} finding{'s' * (fixed != 1)}"
    if changed:
        text += f" in {len(changed)} file{'s' * (len(changed) != 1)}: {', '.join(changed)}"
    return text + "."


def summary(findings: list[Finding], files: int, unsafe_fixes: bool = False, fixed: int = 0, changed: list[str] = ()) -> str:
    if not findings:
        done = f"{_fixed(fixed, changed)} " if fixed else ""
        return click.style(f"{done}No device leaks found in {files} file{'s' * (files != 1)}.", fg="green")
    n = len(findings)
    nfiles = len({f.filename for f in findings})
    parts = [f"Found {n} finding{'s' * (n != 1)} in {nfiles} file{'s' * (nfiles != 1)} ({files} checked)."]
    if fixed:
        parts.insert(0, _fixed(fixed, changed))
    safe = sum(1 for f in findings if f.fix and f.fix.applicable and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in findings if f.fix and f.fix.applicable and f.fix.applicability is Applicability.UNSAFE)
    if unsafe_fixes:
        safe, unsafe = safe + unsafe, 0
    if safe:
        parts.append(f"[*] {safe} fixable with `--fix`.")
    if unsafe:
        parts.append(f"{unsafe} more fixable with `--fix --unsafe-fixes`.")
    return "\n".join(parts)


def stream(
    findings: list[Finding], files: int = 0, unsafe_fixes: bool = False, fixed: int = 0, changed: list[str] = (), show_summary: bool = True
):
    for f in findings:
        yield line(f, unsafe_fixes) + "\n"
    if show_summary:
        yield ("\n" if findings else "") + summary(findings, files, unsafe_fixes, fixed, changed) + "\n"
    elif not findings:
        yield "\n"

