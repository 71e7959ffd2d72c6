"""The fix stage of `devlint check --fix/--diff`: applying fixes without ever corrupting a file.

Structural fixes first: the planned operations of every chosen Threading fix, united
(findings that share a plan share its operations), are carried out by the libcst
codemods on the files they touch. Then text edits, per file: per round, the
applicable fixes are taken in order and any fix that overlaps one already taken waits
for the next round (after a re-check), so nested or adjacent fixes compose instead of
overriding each other. Every result is re-parsed; a fix whose result does not parse
is dropped and reported. Files are written in units: the files one structural fix
links are written all or none (write.py), each atomically, in its original encoding,
BOM, newline style and permissions.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from devlint.check.write import WriteError, write_all
from devlint.codemod import CodemodError, rewrite, rewrite_statements, text_edits
from devlint.findings import Applicability, Edit, Finding, Fix, Operation
from devlint.static import analyze
from devlint.static.source import Source

MAX_ROUNDS = 10


def allowed(fix: Fix | None, unsafe: bool) -> bool:
    """Is this fix applied by this run (`unsafe`: --unsafe-fixes)?"""
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
        fixes = [f.fix for f in result.remaining if allowed(f.fix, unsafe) and f.fix.threading is None]
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
        if len(applied) == len(fixes) and not any(allowed(f.fix, unsafe) and f.fix.threading is None for f in result.remaining):
            break
    return result


def diff(display: str, before: str, after: str) -> str:
    name = display.lstrip("/")
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}"
        )
    )




# --- structural fixes ---------------------------------------------------------------


class _NoCodemods(Exception):
    """libcst is missing: structural fixes cannot be made (the text fixes still can)."""


def _by_file(operations: list[Operation], texts: dict[str, str]) -> Iterator[tuple[str, list[Operation]]]:
    """The operations grouped by file, in file order; CodemodError on reaching a file not
    checked (after the files before it were handled, as the callers' errors come in order)."""
    by_file: dict[str, list[Operation]] = {}
    for op in operations:
        by_file.setdefault(op.span.filename, []).append(op)
    for name, ops in sorted(by_file.items()):
        if name not in texts:
            raise CodemodError(f"{name} is not among the checked files")
        yield name, ops


@contextlib.contextmanager
def _libcst():
    """libcst imported on first use: its absence is _NoCodemods, not an internal error."""
    try:
        yield
    except ImportError as exc:
        raise _NoCodemods(f"structural fixes need libcst, which is not installed ({exc})") from exc


def _rewrite(operations: list[Operation], texts: dict[str, str]) -> dict[str, str]:
    """New texts of the files `operations` touch; raises CodemodError for any that fails,
    _NoCodemods without libcst."""
    out = {}
    for name, ops in _by_file(operations, texts):
        with _libcst():
            new = rewrite(texts[name], ops, name)
        if not parses(new):
            raise CodemodError(f"{name}: the result would not parse")
        out[name] = new
    return out


def materialize(findings: list[Finding], works: list) -> list[Finding]:
    """Planned structural fixes with their edits (for the formats that carry edits: JSON,
    SARIF, the editor); one that cannot be carried out becomes display-only. An edit names
    its file where that is not the finding's own."""
    texts: dict[str, str] = {}
    rewritten: dict[tuple, dict[str, str] | str] = {}  # plan -> new texts, or why it failed
    out = []
    for finding in findings:
        fix = finding.fix
        if fix is None or fix.threading is None or fix.threading.plan is None:
            out.append(finding)
            continue
        if not texts:
            texts = {w.file.display: source.text for w in works if w.data is not None and (source := analyze.source(w.data))}
        plan, own = fix.threading.plan, finding.filename
        if (plan, own) not in rewritten:
            try:
                rewritten[plan, own] = _plan_edits(list(plan), texts, own)
            except (CodemodError, _NoCodemods) as exc:
                rewritten[plan, own] = str(exc)
        edits = rewritten[plan, own]
        if isinstance(edits, str):
            made = Fix(Applicability.DISPLAY_ONLY, f"{fix.message} (not applicable: {edits})")
        else:
            made = replace(fix, edits=edits)
        out.append(replace(finding, fix=made))
    return out


def _plan_edits(operations: list[Operation], texts: dict[str, str], own: str) -> tuple[Edit, ...]:
    """The edits of one plan, file by file as _rewrite carries it out (the same errors, in the
    same order), from the top-level statements it changes: what a plan costs does not grow
    with its files (a module of 5,000 functions has 5,000 plans). The edits are those of the
    whole files' diff, since what lies between the changed runs is the same on both sides."""
    edits: list[Edit] = []
    for name, ops in _by_file(operations, texts):
        with _libcst():
            runs = rewrite_statements(texts[name], ops, name)
        shown = None if name == own else name
        if runs is None:  # printed whole
            new = _rewrite(ops, {name: texts[name]})[name]
            edits += text_edits(texts[name], new, shown)
            continue
        if not all(parses(new) for _, _, new in runs):
            raise CodemodError(f"{name}: the result would not parse")
        edits += [e for row, old, new in runs for e in text_edits(old, new, shown, row)]
    return tuple(edits)


@dataclass
class _Structural:
    texts: dict[str, str] = field(default_factory=dict)  # new texts of the files changed
    applied: int = 0  # findings whose structural fix was carried out
    units: list[set[str]] = field(default_factory=list)  # files that must be written together
    dropped: list[str] = field(default_factory=list)
    met: bool = False  # a fix was left out for meeting another: planned again, it may apply


def _structural(findings: list[Finding], texts: dict[str, str]) -> _Structural:
    """Carry out every chosen structural fix at once; if that fails, add them one by one in
    order, keeping each that still works with those kept before it (a later plan that
    conflicts with an earlier one is dropped with its reason, the others still apply)."""
    result = _Structural()
    plans: dict[tuple, list[Finding]] = {}
    for f in findings:
        plans.setdefault(f.fix.threading.plan, []).append(f)
    good = list(plans)
    try:
        result.texts = _rewrite([op for plan in good for op in plan], texts) if good else {}
    except _NoCodemods as exc:
        result.dropped.append(f"{len(findings)} fix{'es' * (len(findings) != 1)} not applied: {exc}")
        return result
    except CodemodError:
        good = []
        for plan, owners in plans.items():
            try:
                result.texts = _rewrite([op for kept in good + [plan] for op in kept], texts)
                good.append(plan)
            except CodemodError as exc:
                result.met = result.met or bool(good)
                result.dropped.append(f"fix dropped: {exc}: {owners[0].fix.message}")
    for plan in good:
        result.applied += len(plans[plan])
        result.units.append({op.span.filename for op in plan})
    return result


def _units(groups: list[set[str]]) -> list[set[str]]:
    """Merge groups that share a file: their files are written together."""
    merged: list[set[str]] = []
    for group in groups:
        joined = set(group)
        for other in [m for m in merged if m & joined]:
            joined |= other
            merged.remove(other)
        merged.append(joined)
    return merged


@dataclass
class Outcome:
    fixed: int = 0
    contents: dict[str, bytes] = field(default_factory=dict)  # new bytes (as stored) of each file changed
    unapplied_runtime: list[Finding] = field(default_factory=list)  # runtime-placed findings still standing
    met: bool = False  # a structural fix was left out for meeting another one


STRUCTURAL_ROUNDS = 3


def fix_project(
    findings: list[Finding], linted, selections, suppression, unsafe: bool, write: bool, jobs: int = 1, cache=None, libraries=None
) -> Outcome:
    """fix_files, then again on its result while it leaves applicable fixes behind, so a
    second --fix changes nothing: a structural fix left out for meeting another (a device
    threaded up into a function that another fix gives a different default) is planned
    through it once it is in, and a fix that makes a parameter read (`.to("cuda")` ->
    `.to(device)` in a function whose `device="cuda"` nothing read) makes the calls that
    omit it findings of the project. `selections`: the selected stage of `linted` (its
    re-checks drop the same); `libraries`: the library knowledge the check used."""
    from devlint.check import lint, thread

    total = Outcome()
    tried: set[tuple[str, str, str]] = set()  # the fixes taken so far: one left behind is retried only after a meeting
    for round_ in range(STRUCTURAL_ROUNDS):
        tried |= {_key(f) for f in findings if allowed(f.fix, unsafe)}

        def reindex(python: dict[str, bytes], _works=linted.works, _builds=linted.index.builds):
            return lint.build_index(lint.with_python(_works, python), jobs, cache or lint.Cache.disabled(), libraries, builds=_builds)

        outcome = fix_files(findings, linted, suppression, unsafe, write, reindex, excuse=selections.drop_in_text)
        total.fixed += outcome.fixed
        total.contents.update(outcome.contents)
        if round_ == 0:
            total.unapplied_runtime = outcome.unapplied_runtime
        if not outcome.contents:
            break
        linted = lint.lint_works(lint.replaced(linted.works, outcome.contents), suppression, jobs, cache, libraries, linted.index.builds)
        findings, selections = thread.project_findings(linted)
        if not outcome.met and not any(allowed(f.fix, unsafe) and _key(f) not in tried for f in findings):
            break
    return total


def _key(finding: Finding) -> tuple[str, str, str]:
    """A finding across rounds of fixes, whose lines move: its rule, file and message."""
    return finding.code, finding.filename, finding.message


def fix_files(findings: list[Finding], linted, suppression, unsafe: bool, write: bool, reindex, excuse=None) -> Outcome:
    """Fix every file with an applicable fix; with `write`, write them (the files of one
    structural fix all or none), else only say what they would become. `linted` is the
    check stages' result (files read, project index, checks); `reindex(python)` is the
    project index with some files' Python replaced; `excuse(findings, display, module,
    data)` drops what the project says is no leak (the selected stage)."""
    import click

    outcome = Outcome()
    chosen = [f for f in findings if allowed(f.fix, unsafe)]
    # Placed by the runtime report: leaks the source alone did not show, and static findings
    # whose fix only the run could make (it knows the allowed device). A re-check cannot
    # find them again, so they are carried into the fix loop by line.
    runtime_placed = [f for f in findings if f.runtime and (f.runtime.get("runtime_only") or f.runtime.get("fix_from_run"))]
    if not chosen:
        outcome.unapplied_runtime = runtime_placed
        return outcome
    works = {w.file.display: w for w in linted.works}
    sources = {name: source for name, w in works.items() if w.data is not None and (source := analyze.source(w.data))}
    structural = _structural([f for f in chosen if f.fix.threading is not None], {n: s.text for n, s in sources.items()})
    for message in structural.dropped:
        click.echo(f"devlint: {message}", err=True)
    outcome.fixed += structural.applied
    outcome.met = structural.met
    new_texts = dict(structural.texts)
    index = linted.index
    if new_texts:
        index = reindex({n: sources[n].to_bytes(t) for n, t in new_texts.items()})

    for name in sorted({f.filename for f in chosen if f.fix.threading is None} | set(new_texts)):
        work, source = works[name], sources[name]
        start = Source(new_texts.get(name, source.text), source.encoding, source.bom)

        def recheck(text: str, _work=work, _source=source):
            data = _source.to_bytes(text)
            found = analyze.check(data, _work.file.display, _work.file.module, suppression.enabled, index, linted.static_checks()).findings
            if excuse is not None and _work.notebook is None:
                found = excuse(found, _work.file.display, _work.file.module, data)
            return suppression.per_file(found, _work.file)

        # Runtime-placed findings are placed by line: valid for the text as it was read.
        placed = [f for f in runtime_placed if f.filename == name] if work.notebook is None and name not in new_texts else []
        result = fix_source(start, recheck(start.text) + placed, recheck, unsafe)
        for message in result.dropped:
            click.echo(f"devlint: {name}: {message}", err=True)
        outcome.fixed += result.fixed
        if result.text != source.text:
            new_texts[name] = result.text
    applied = {id(f) for f in chosen}
    outcome.unapplied_runtime = [f for f in runtime_placed if f.filename not in new_texts or id(f) not in applied]

    for name, text in new_texts.items():
        notebook = works[name].notebook
        outcome.contents[name] = notebook.with_python(text) if notebook else sources[name].to_bytes(text)
    if write:
        for unit in _units(structural.units + [{name} for name in outcome.contents]):
            changes = {works[name].file.path: outcome.contents[name] for name in sorted(unit) if name in outcome.contents}
            try:
                write_all(changes)
            except WriteError as exc:
                click.echo(f"devlint: not written ({', '.join(sorted(unit))}): {exc}", err=True)
                for name in unit:
                    outcome.contents.pop(name, None)
    return outcome
