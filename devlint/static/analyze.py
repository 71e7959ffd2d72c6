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
from devlint.static import collect, engine, noqa, parts
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


def internal_error(filename: str, exc: Exception, row: int = 1) -> Finding:
    """A bug of devlint's met while checking a file, reported there: the run goes on."""
    return _error(filename, f"internal error while checking ({type(exc).__name__}: {exc}); please report it", row)


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


def source(data: bytes) -> Source | None:
    """`parse(data, ...).source` without the tree, for a stage that needs only the text."""
    if len(data) > MAX_BYTES:
        return None
    try:
        return Source.from_bytes(data)
    except UndecodableSource:
        return None


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
    """The findings of one file (`parsed`: its tree, when an earlier stage parsed `data`).
    A very large module no earlier stage parsed is checked in parts where it can be."""
    if parsed is None and len(data) >= parts.MIN_BYTES:
        result = check_in_parts(data, filename, module_name, enabled, index, checks)
        if result is not None:
            return result
    parsed = parsed or parse(data, filename)
    if parsed.tree is None:
        findings = [parsed.error] if UNPARSABLE in enabled else []
        return FileResult(findings, parsed.source)
    ctx = make_context(parsed, filename, module_name, enabled, index)
    try:
        engine.run(ctx, checks)
    except Exception as exc:  # a bug in a check must not stop the run: say so for this file
        row = getattr(ctx.ancestors[-1], "lineno", 1) if ctx.ancestors else 1
        ctx.findings = [internal_error(filename, exc, row)]
    return FileResult(_kept(ctx.findings, parsed.source), parsed.source)


def _kept(findings: list[Finding], source: Source) -> list[Finding]:
    """The findings no `# noqa` suppresses, sorted."""
    if findings:  # suppression comments only matter where there is something to suppress
        suppressions = noqa.parse(source.text)
        findings = [f for f in findings if not suppressions.suppresses(f.code, f.location.row, f.end_location.row)]
    findings.sort(key=lambda f: f.sort_key)
    return findings


# The checks whose questions one part of a module answers as the whole module would, or
# raise parts.NotChunkable: they keep no state from statement to statement but the
# context's memos, and read the module's other code only through its scope and tree.
PART_CHECKS = frozenset({"DL001", "DL002", "DL003", "DL004", "DL006", "DL008", "DL010", "DL011", "DL012"})


def check_in_parts(
    data: bytes, filename: str, module_name: str, enabled: frozenset[str], index: project_index.ProjectIndex, checks: list,
    part_lines: int | None = None,
) -> FileResult | None:
    """`check`'s result, with one part's tree alive at a time (static/parts.py); None when
    the module must be checked whole: it does not split, does not parse in parts, a check
    it wants is not one of PART_CHECKS, or a question needs another part's code."""
    try:
        source = Source.from_bytes(data)
    except UndecodableSource:
        return None
    if "__future__" in source.text:  # a future import can change how the rest parses
        return None
    plan = parts.plan(source.text, filename, source.line_starts, part_lines or parts.PART_LINES)
    if len(plan.rows) < 2:
        return None
    try:
        module_scope, exits_before = parts.module_scope(plan, module_name)
        ctx = FileContext(filename, source, module_scope.node, module_name, enabled, index, module_scope)
        wanted = engine.wanted(ctx, checks)
        table = engine.dispatch_table(wanted)
        if any(c.code not in PART_CHECKS for c in wanted) or ast.Module in table.by_type:
            return None
        for i in range(len(plan.rows)):
            root = parts.ChunkModule(plan.parse(i), exits_before[i])
            plan.enter(i, root)
            ctx.enter_part(root)
            engine.walk_tree(ctx, table)
    except Exception:  # NotChunkable, or a check's error: the whole module's check says what it is
        return None
    return FileResult(_kept(ctx.findings, source), source)
