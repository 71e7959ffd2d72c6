"""The fix stage of `devlint check --fix/--diff`: applying fixes without ever corrupting a file.

Fixes are text edits. Per round, the applicable fixes are taken in order and any
fix that overlaps one already taken waits for the next round (after a re-check),
so nested or adjacent fixes compose instead of overriding each other. Every
result is re-parsed; a fix whose result does not parse is dropped and reported.
The file is written atomically (a temporary file renamed over it) in its original
encoding, BOM, newline style and permissions.
"""

from __future__ import annotations

import ast
import difflib
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from devlint.findings import Applicability, Finding, Fix
from devlint.static import analyze
from devlint.static.source import Source

MAX_ROUNDS = 10


def allowed(fix: Fix | None, unsafe: bool) -> bool:
    if fix is None or not fix.applicable:
        return False
    return fix.applicability is Applicability.SAFE or (unsafe and fix.applicability is Applicability.UNSAFE)


def _span(source: Source, fix: Fix) -> list[tuple[int, int]]:
    return sorted((source.offset(e.location), source.offset(e.end_location)) for e in fix.edits)


def _overlaps(spans: list[tuple[int, int]], taken: list[tuple[int, int]]) -> bool:
    for start, end in spans:
        for t_start, t_end in taken:
            if start < t_end and t_start < end:
                return True
            if start == end == t_start == t_end:  # two insertions at one point: order unknown
                return True
            if (start == end and t_start < start < t_end) or (t_start == t_end and start < t_start < end):
                return True
    return False


def apply(source: Source, fixes: list[Fix]) -> tuple[str, list[Fix]]:
    """Apply the non-overlapping fixes (first come first served); return text and fixes applied."""
    taken: list[tuple[int, int]] = []
    chosen: list[tuple[int, int, str]] = []
    applied: list[Fix] = []
    for fix in fixes:
        spans = _span(source, fix)
        if _overlaps(spans, taken):
            continue
        taken.extend(spans)
        applied.append(fix)
        for edit in fix.edits:
            chosen.append((source.offset(edit.location), source.offset(edit.end_location), edit.content))
    text = source.text
    for start, end, content in sorted(chosen, reverse=True):
        text = text[:start] + content + text[end:]
    return text, applied


def parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


@dataclass
class FileFix:
    original: Source
    text: str
    fixed: int = 0
    dropped: list[str] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.original.text


def fix_source(source: Source, findings: list[Finding], recheck, unsafe: bool) -> FileFix:
    """Fix `findings` in `source` round by round; `recheck(text)` returns the findings of a new text."""
    result = FileFix(original=source, text=source.text, remaining=findings)
    current = source
    for _ in range(MAX_ROUNDS):
        fixes = [f.fix for f in result.remaining if allowed(f.fix, unsafe)]
        if not fixes:
            break
        text, applied = apply(current, fixes)
        if not parses(text):
            # Find the culprits one by one; keep the rest.
            text, applied = current.text, []
            for fix in fixes:
                candidate, one = apply(Source(text=text, encoding=source.encoding, bom=source.bom), [fix])
                if one and parses(candidate):
                    text = candidate
                    applied.extend(one)
                elif one:
                    result.dropped.append(f"fix dropped, the result would not parse: {fix.message}")
            if not applied:
                break
        result.fixed += len(applied)
        result.text = text
        current = Source(text=text, encoding=source.encoding, bom=source.bom)
        result.remaining = recheck(text)
        if len(applied) == len(fixes) and not any(allowed(f.fix, unsafe) for f in result.remaining):
            break
    return result


def diff(display: str, before: str, after: str) -> str:
    name = display.lstrip("/")
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}"
        )
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` (or the file a symlink points to) with `data` in one rename, keeping its mode."""
    path = Path(os.path.realpath(path))
    mode = os.stat(path).st_mode
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".devlint", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass
class Outcome:
    fixed: int = 0
    diffs: list[str] = field(default_factory=list)  # with write=False
    remaining: list[Finding] = field(default_factory=list)


def fix_files(findings: list[Finding], linted, suppression, unsafe: bool, write: bool) -> Outcome:
    """Fix every file with an applicable fix: write it (`write`) or collect its diff.
    `linted` is the check stages' result (files read, project index, checks)."""
    import click

    index, checks = linted.index, linted.checks
    by_name = {w.file.display: w for w in linted.works}
    wanted = {f.filename for f in findings if allowed(f.fix, unsafe)}
    outcome = Outcome(remaining=[f for f in findings if f.filename not in wanted])
    if not wanted:
        outcome.remaining = findings
        return outcome
    enabled = suppression.enabled
    for name in sorted(wanted):
        work = by_name[name]
        file, notebook = work.file, work.notebook
        own = [f for f in findings if f.filename == name]
        source = analyze.parse(work.data, name).source

        def recheck(text: str, _file=file, _source=source):
            found = analyze.check(_source.to_bytes(text), _file.display, _file.module, enabled, index, checks).findings
            return suppression.per_file(found, _file)

        runtime_only = [f for f in own if f.runtime and f.runtime.get("runtime_only")] if not notebook else []
        result = fix_source(source, recheck(source.text) + runtime_only, recheck, unsafe)
        for message in result.dropped:
            click.echo(f"devlint: {name}: {message}", err=True)
        new_bytes = notebook.with_python(result.text) if notebook else source.to_bytes(result.text)
        if result.changed:
            raw = file.path.read_bytes()
            if write:
                try:
                    write_atomically(file.path, new_bytes)
                except (OSError, UnicodeEncodeError) as exc:
                    click.echo(f"devlint: {name}: not written: {exc}", err=True)
                    outcome.remaining.extend(own)
                    continue
            else:
                outcome.diffs.append(diff(name, raw.decode("utf-8", "replace"), new_bytes.decode("utf-8", "replace")))
        outcome.fixed += result.fixed
        outcome.remaining.extend(work.for_user(result.remaining))
        outcome.remaining.extend(f for f in runtime_only if not allowed(f.fix, unsafe))  # the re-check cannot see them
    outcome.remaining.sort(key=lambda f: f.sort_key)
    return outcome
