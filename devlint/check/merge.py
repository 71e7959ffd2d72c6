"""`devlint check --runtime-report`: what the runtime saw, joined to what the source says.

- A static finding on a line where the runtime saw a leak is one finding, marked
  confirmed (`runtime`: count, devices, bytes, whether it created a context) and listed
  first in text output.
- A runtime leak with no static finding there (inside a library, through a variable, in
  a thread) becomes a finding at the user's line, with a fix built from that line's code
  and the values the runtime saw: a library call that defaulted to CUDA gets
  `device=<the allowed device's name in scope>`.
- A static finding on a line the runtime ran without any leak is marked exercised-clean,
  so a user can sort by evidence.

Lines are matched by file and line; each leak carries its line's text, so a file edited
since the run is noticed: a leak whose line moved is followed to the line that now holds
that text nearby, and one whose line is gone is reported as stale, never put on a wrong line.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from devlint.findings import Applicability, Finding, Fix, Location

SUPPORTED_VERSIONS = (1,)
_SEARCH = 30  # how far a moved line is looked for, in lines


class ReportError(Exception):
    """A runtime report that cannot be used: said in one line, exit code 2."""


@dataclass
class RuntimeLeak:
    code: str
    message: str
    filename: str
    line: int
    device: str
    kind: str
    count: int
    bytes: int
    suggestion: str
    origin: str | None = None
    function: str = ""
    source_line: str | None = None
    created_context: bool = False
    option: dict | None = None  # the called API's own device option: {"call", "keyword", "value"}


@dataclass
class Report:
    path: Path
    allowed: list[str]
    leaks: list[RuntimeLeak]
    exercised: dict[tuple[str, int], int] = field(default_factory=dict)  # (file, line) -> calls seen clean


def _real(filename: str, base: Path) -> str:
    path = Path(filename)
    if not path.is_absolute():
        path = base / path
    return os.path.realpath(path)


def read(path: Path) -> dict:
    """A report file as data, checked, with every filename made absolute (relative names
    are relative to the report's directory)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReportError(f"runtime report not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ReportError(f"{path} is a directory, not a runtime report") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read runtime report {path}: {exc}") from exc
    except ValueError as exc:
        raise ReportError(f"runtime report {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "leaks" not in data or "version" not in data:
        raise ReportError(f"{path} is not a devlint runtime report (no `version` and `leaks`)")
    if data["version"] not in SUPPORTED_VERSIONS:
        raise ReportError(
            f"runtime report {path} has schema version {data['version']!r}; this devlint reads version "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}: rerun `devlint run` with this devlint"
        )
    base = Path(path).resolve().parent
    try:
        for item in [*data["leaks"], *data.get("exercised", [])]:
            item["filename"] = _real(item["filename"], base)
    except (KeyError, TypeError) as exc:
        raise ReportError(f"runtime report {path} has a malformed entry: {exc!r}") from exc
    return data


def join_reports(sources: list[Path]) -> dict:
    """One report from several: report files (one per node), or job directories that a
    `devlint run` left behind (their process logs), for `devlint report merge`."""
    from devlint import reports

    parts = []
    for source in sources:
        if Path(source).is_dir():
            from devlint.runtime import job

            found, _ = job.collect(str(source), wait=0)
            if not found:
                raise ReportError(f"{source} holds no devlint process logs")
            parts.extend(found)
        else:
            parts.append(read(source))
    return reports.join(parts)


def load_all(paths: list[Path]) -> Report:
    """The reports at `paths` as one (`check --runtime-report A --runtime-report B`)."""
    if len(paths) == 1:
        return load(paths[0])
    from devlint import reports

    return _parse(reports.join([read(path) for path in paths]), paths[0])


def load(path: Path) -> Report:
    return _parse(read(path), path)


def _option(raw) -> dict | None:
    """A leak's `option`, kept only when it is well formed: a keyword and a Python expression."""
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("call", "keyword", "value")):
        return None
    if not raw["keyword"].isidentifier():
        return None
    try:
        ast.parse(raw["value"], mode="eval")
    except SyntaxError:
        return None
    return {k: raw[k] for k in ("call", "keyword", "value")}


def _parse(data: dict, path: Path) -> Report:
    leaks = []
    try:
        for item in data["leaks"]:
            leaks.append(
                RuntimeLeak(
                    code=str(item["code"]),
                    message=str(item["message"]),
                    filename=str(item["filename"]),
                    line=int(item["line"]),
                    device=str(item.get("device", "")),
                    kind=str(item.get("kind", "allocation")),
                    count=int(item.get("count", 1)),
                    bytes=int(item.get("bytes", 0)),
                    suggestion=str(item.get("suggestion", "")),
                    origin=item.get("origin"),
                    function=str(item.get("function", "")),
                    source_line=item.get("source_line"),
                    created_context=bool(item.get("created_context", False)),
                    option=_option(item.get("option")),
                )
            )
        exercised = {(str(e["filename"]), int(e["line"])): int(e.get("count", 1)) for e in data.get("exercised", [])}
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"runtime report {path} has a malformed entry: {exc!r}") from exc
    return Report(Path(path), [str(a) for a in data.get("allowed", [])], leaks, exercised)


# --- following lines that moved --------------------------------------------------------


def _relocate(leak: RuntimeLeak, lines: list[str]) -> int | None:
    """The line that holds the leak's code now: the same line if unchanged, else the
    nearest line with the same text; None when the code is gone or ambiguous."""
    if leak.source_line is None:
        return leak.line if 1 <= leak.line <= len(lines) else None
    wanted = leak.source_line.strip()
    if 1 <= leak.line <= len(lines) and lines[leak.line - 1].strip() == wanted:
        return leak.line
    for distance in range(1, _SEARCH + 1):
        hits = [n for n in (leak.line - distance, leak.line + distance) if 1 <= n <= len(lines) and lines[n - 1].strip() == wanted]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return None
    return None


# --- runtime-only findings ----------------------------------------------------------------


def _call_on_line(tree: ast.Module, line: int, origin: str | None) -> ast.Call | None:
    """The call on `line` that led into the library frame `origin` ("path:line in Class.func")."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.lineno <= line <= n.end_lineno]
    if not calls:
        return None
    if origin:
        qual = origin.rsplit(" in ", 1)[-1]
        names = {part for part in qual.split(".") if part not in ("__init__", "__call__", "<module>")}
        named = [c for c in calls if _callee_name(c) in names]
        if named:
            return min(named, key=lambda c: (c.end_lineno - c.lineno, c.end_col_offset - c.col_offset))
    on_line = [c for c in calls if c.lineno == line]
    return max(on_line or calls, key=lambda c: (c.end_lineno - c.lineno, c.end_col_offset - c.col_offset))


def _callee_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _runtime_finding(leak: RuntimeLeak, display: str, source, tree, line: int) -> Finding:
    """A finding for a leak the source alone did not show, with a fix where one is safe to make."""
    from devlint.static.context import FileContext
    from devlint.static.index import ProjectIndex

    call = _call_on_line(tree, line, leak.origin)
    if leak.option is not None:
        call = _called(tree, line, leak.option["call"]) or call
    row_text = source.line(line)
    start = Location(line, len(row_text) - len(row_text.lstrip()) + 1)
    end = Location(line, len(row_text) + 1)
    fix = Fix(Applicability.DISPLAY_ONLY, leak.suggestion)
    if call is not None:
        ctx = FileContext(display, source, tree, "", frozenset(), ProjectIndex())
        start, end = ctx.start(call), ctx.end(call)
        if leak.option is not None and _callee_name(call) == leak.option["call"]:
            fix = _option_fix(ctx, call, leak)
        elif leak.code == "DL012" and not any(kw.arg == "device" for kw in call.keywords):
            ctx.scope = _scope_at(ctx, call)
            found = ctx.suggest_device(call)
            if found is not None:
                fix = Fix(
                    Applicability.UNSAFE,
                    f"Pass `device={found.expr}` (the runtime saw the default put this on {leak.device})",
                    (ctx.add_keyword(call, f"device={found.expr}"),),
                )
    where = f" (inside {leak.origin})" if leak.origin else ""
    return Finding(
        code=leak.code,
        message=f"{leak.message}{where}",
        filename=display,
        location=start,
        end_location=end,
        fix=fix,
        noqa_row=line,
        runtime={**_evidence([leak]), "runtime_only": True},
        notes=("seen at runtime only: the source alone did not show this leak",),
    )


def _runtime_option_fix(finding: Finding, leaks: list[RuntimeLeak], read) -> Fix | None:
    """The API's own option with the run's device, for a static finding whose own fix cannot
    be applied (the source alone had no device to write): the run knows which device it was
    allowed, so the edit can be made."""
    if finding.fix is not None and finding.fix.applicability is not Applicability.DISPLAY_ONLY:
        return None
    leak = next((l for l in leaks if l.option is not None), None)
    if leak is None:
        return None
    from devlint.static.context import FileContext
    from devlint.static.index import ProjectIndex

    source, tree = read(finding.filename)
    call = _called(tree, finding.location.row, leak.option["call"]) if tree is not None else None
    if call is None:
        return None
    return _option_fix(FileContext(finding.filename, source, tree, "", frozenset(), ProjectIndex()), call, leak)


def _called(tree: ast.Module, line: int, name: str) -> ast.Call | None:
    """The call of `name` that spans `line` (the entry point the runtime named)."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.lineno <= line <= n.end_lineno and _callee_name(n) == name]
    return min(calls, key=lambda c: (c.end_lineno - c.lineno, c.end_col_offset - c.col_offset)) if calls else None


def _option_fix(ctx, call: ast.Call, leak: RuntimeLeak) -> Fix:
    """The API's own device option with the run's device: set, or replaced where the call gives it."""
    keyword, value = leak.option["keyword"], leak.option["value"]
    given = next((kw for kw in call.keywords if kw.arg == keyword), None)
    edit = ctx.replace(given.value, value) if given is not None else ctx.add_keyword(call, f"{keyword}={value}")
    return Fix(Applicability.UNSAFE, f"Pass `{keyword}={value}` (the runtime saw this call put work on {leak.device})", (edit,))


def _scope_at(ctx, node: ast.AST):
    """The scope enclosing `node`, built the way the engine would reach it."""
    from devlint.static.walk import children

    parents: dict[int, ast.AST] = {}
    stack = [ctx.tree]
    while stack:
        current = stack.pop()
        for child in children(current):
            parents[id(child)] = current
            stack.append(child)
    chain = []
    current = parents.get(id(node))
    while current is not None:
        chain.append(current)
        current = parents.get(id(current))
    scope = ctx.module_scope
    for outer in reversed(chain):
        if isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            scope = scope.child(outer)
    return scope


def _evidence(leaks: list[RuntimeLeak]) -> dict:
    return {
        "count": sum(l.count for l in leaks),
        "devices": sorted({l.device for l in leaks}),
        "bytes": sum(l.bytes for l in leaks),
        "context_created": any(l.created_context for l in leaks),
        "exercised": True,
    }


@dataclass
class Merged:
    findings: list[Finding]
    notes: list[str]


def merge(findings: list[Finding], report: Report, checked: dict[str, str], read) -> Merged:
    """Join `findings` (of the files in `checked`: realpath -> display name) with `report`.
    `read(display)` returns (Source, tree) for a checked file."""
    notes: list[str] = []
    by_site: dict[tuple[str, int], list[RuntimeLeak]] = {}
    gone: dict[str, int] = {}
    for leak in report.leaks:
        display = checked.get(leak.filename)
        if display is None:
            if not os.path.exists(leak.filename):
                gone[leak.filename] = gone.get(leak.filename, 0) + 1
            continue  # otherwise a file outside what was checked (a library, another project)
        source, tree = read(display)
        if source is None:
            notes.append(f"{display}: cannot read it to place the runtime's leak at line {leak.line}")
            continue
        line = _relocate(leak, [source.line(n) for n in range(1, len(source.line_starts) + 1)])
        if line is None:
            notes.append(
                f"{display}:{leak.line}: the file changed since the runtime report was written; "
                f"its {leak.code} leak there was not placed (rerun `devlint run`)"
            )
            continue
        by_site.setdefault((display, line), []).append(leak)

    for filename, count in sorted(gone.items()):
        notes.append(f"the runtime report names {filename}, which no longer exists: its {count} leak site(s) were not placed")
    merged: list[Finding] = []
    matched: set[tuple[str, int]] = set()
    for finding in findings:
        rows = range(finding.location.row, finding.end_location.row + 1)
        leaks = [l for row in rows for l in by_site.get((finding.filename, row), [])]
        if leaks:
            matched.update((finding.filename, row) for row in rows)
            from_run = _runtime_option_fix(finding, leaks, read)
            if from_run is None:
                merged.append(replace(finding, runtime=_evidence(leaks)))
            else:
                merged.append(replace(finding, runtime={**_evidence(leaks), "fix_from_run": True}, fix=from_run))
            continue
        real = next((r for r, d in checked.items() if d == finding.filename), None)
        ran = any(report.exercised.get((real, row)) for row in rows)
        merged.append(replace(finding, runtime={"count": 0, "devices": [], "bytes": 0, "exercised": True}) if ran else finding)
    for (display, line), leaks in by_site.items():
        if (display, line) in matched:
            continue
        source, tree = read(display)
        for code in dict.fromkeys(l.code for l in leaks):
            group = [l for l in leaks if l.code == code]
            finding = _runtime_finding(group[0], display, source, tree, line)
            finding.runtime = {**_evidence(group), "runtime_only": True}
            merged.append(finding)
    return Merged(merged, notes)


def merge_into(findings: list[Finding], report: Report, files: list, suppression) -> list[Finding]:
    """Join the report's leaks to the findings of the checked files; findings placed from
    the report obey the same selection, per-file ignores and `# noqa` as static ones."""
    import click

    from devlint.static import analyze

    checked = {os.path.realpath(f.path): f.display for f in files}
    by_display = {f.display: f for f in files}
    parsed_files: dict[str, tuple] = {}

    def read(display):
        if display not in parsed_files:
            file = by_display[display]
            parsed = None if file.path.suffix == ".ipynb" else analyze.parse(file.path.read_bytes(), display)
            parsed_files[display] = (parsed.source, parsed.tree) if parsed and parsed.tree else (None, None)
        return parsed_files[display]

    merged = merge(findings, report, checked, read)
    for note in merged.notes:
        click.echo(f"devlint: {note}", err=True)
    return [
        f
        for f in merged.findings
        if not (f.runtime and f.runtime.get("runtime_only"))
        or suppression.keeps_placed(f, by_display[f.filename], read(f.filename)[0].text)
    ]


def evidence_order(finding: Finding) -> tuple:
    """Confirmed leaks first, then findings not exercised, then those exercised without a leak."""
    runtime = finding.runtime
    if runtime and runtime.get("count"):
        rank = 0
    elif runtime and runtime.get("exercised"):
        rank = 2
    else:
        rank = 1
    return (rank, *finding.sort_key)
