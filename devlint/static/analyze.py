"""Check one file: read, parse, run the enabled checks, drop what `# noqa` suppresses.

Nothing here raises for bad input: a file that cannot be read or parsed becomes a
DL901 finding at the line of the error, and the caller goes on with the next file.
"""

from __future__ import annotations

import ast
import symtable
import warnings
from dataclasses import dataclass, field

from devlint.findings import Finding, Location
from devlint.static import collect, engine, noqa
from devlint.static import index as project_index
from devlint.static.context import FileContext
from devlint.static.source import Source, UndecodableSource

MAX_BYTES = 16 * 1024 * 1024
UNPARSABLE = "DL901"


@dataclass
class Parsed:
    source: Source | None = None
    tree: ast.Module | None = None
    error: Finding | None = None


@dataclass
class FileResult:
    findings: list[Finding] = field(default_factory=list)
    source: Source | None = None


def _error(filename: str, message: str, row: int = 1, column: int = 1) -> Finding:
    loc = Location(max(row, 1), max(column, 1))
    return Finding(UNPARSABLE, message, filename, loc, loc, fix=None, noqa_row=None)


def parse(data: bytes, filename: str) -> Parsed:
    if len(data) > MAX_BYTES:
        return Parsed(error=_error(filename, f"file too large to check ({len(data) // (1024 * 1024)} MiB)"))
    try:
        source = Source.from_bytes(data)
    except UndecodableSource as exc:
        return Parsed(error=_error(filename, f"cannot read file: {exc}", exc.row))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes is not ours to report
            tree = ast.parse(source.text, filename=filename)
    except SyntaxError as exc:
        row = exc.lineno or 1
        column = (exc.offset or 1) if row <= len(source.line_starts) else 1
        hint = " (Python 2 syntax?)" if "print" in (exc.text or "") or "Missing parentheses" in (exc.msg or "") else ""
        return Parsed(source, error=_error(filename, f"syntax error: {exc.msg}{hint}", row, column))
    except (RecursionError, MemoryError, ValueError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc) or type(exc).__name__
        return Parsed(source, error=_error(filename, f"cannot parse: {reason}"))
    return Parsed(source, tree)


def syntax_error(data: bytes, filename: str) -> Finding | None:
    """What `parse(data, filename).error` is, for a file whose tree nobody needs: the
    standard library's symtable parses without building Python objects for the tree (a
    third less CPU on torch's sources). Whatever it rejects is parsed again with `ast`, so
    the finding (message, line, column) is the one `parse` gives."""
    if len(data) <= MAX_BYTES:
        try:
            source = Source.from_bytes(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                symtable.symtable(source.text, filename, "exec")
            return None
        except Exception:  # an error of any kind: `parse` names it
            pass
    return parse(data, filename).error


def make_context(parsed: Parsed, filename: str, module_name: str, enabled: frozenset[str], index) -> FileContext:
    return FileContext(filename, parsed.source, parsed.tree, module_name, enabled, index)


def facts(data: bytes, filename: str, module_name: str, parsed: Parsed | None = None) -> project_index.FileFacts:
    """What this file contributes to the project index (empty if it does not parse;
    `parsed`: its tree, when the caller parsed `data` already)."""
    parsed = parsed or parse(data, filename)
    if parsed.tree is None:
        return project_index.FileFacts()
    ctx = make_context(parsed, filename, module_name, frozenset({"index"}), project_index.ProjectIndex())
    try:
        return collect.collect(ctx)
    except RecursionError:
        return project_index.FileFacts()


def check(
    data: bytes,
    filename: str,
    module_name: str,
    enabled: frozenset[str],
    index: project_index.ProjectIndex,
    checks: list,
    parsed: Parsed | None = None,
) -> FileResult:
    """The findings of one file (`parsed`: its tree, when an earlier stage parsed `data`)."""
    parsed = parsed or parse(data, filename)
    if parsed.tree is None:
        findings = [parsed.error] if UNPARSABLE in enabled else []
        return FileResult(findings, parsed.source)
    ctx = make_context(parsed, filename, module_name, enabled, index)
    try:
        engine.run(ctx, checks)
    except Exception as exc:  # a bug in a check must not stop the run: say so for this file
        row = getattr(ctx.ancestors[-1], "lineno", 1) if ctx.ancestors else 1
        ctx.findings = [_error(filename, f"internal error while checking ({type(exc).__name__}: {exc}); please report it", row)]
    kept = ctx.findings
    if kept:  # suppression comments only matter where there is something to suppress
        suppressions = noqa.parse(parsed.source.text)
        kept = [f for f in kept if not suppressions.suppresses(f.code, f.location.row, f.end_location.row)]
    kept.sort(key=lambda f: f.sort_key)
    return FileResult(kept, parsed.source)
