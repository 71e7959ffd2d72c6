"""The pipeline behind `devlint check`: discover, index, check, filter.

Two passes over the files. The first collects project facts (which definitions
default `device` to CUDA) from the few files that can hold them; the second checks
every file against those facts. Both passes run in worker processes when there is
enough work, and give the same result as a serial run: output is sorted.
"""

from __future__ import annotations

import os
import re
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from devlint import catalog
from devlint.config import Settings
from devlint.discovery import SourceFile
from devlint.findings import Finding, Location
from devlint.static import analyze
from devlint.static import index as project_index

# Files smaller than this in total are checked in-process: starting workers costs more.
_PARALLEL_BYTES = 512 * 1024


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0


def _read(file: SourceFile) -> bytes | Finding:
    loc = Location(1, 1)
    try:
        if not stat.S_ISREG(os.stat(file.path).st_mode):  # a FIFO or device would block or never end
            return Finding(analyze.UNPARSABLE, "cannot read file: not a regular file", file.display, loc, loc)
        return file.path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Finding(analyze.UNPARSABLE, f"cannot read file: {reason}", file.display, loc, loc)


def _triggers(enabled: frozenset[str], index: project_index.ProjectIndex) -> re.Pattern:
    """A regex any file with a possible finding must match (each rule lists its triggers)."""
    parts = []
    for code in enabled:
        parts.extend(catalog.get(code).triggers)
    if "DL012" in enabled:
        parts.extend(re.escape(name) for name in index.callable_names())
    return re.compile("|".join(sorted(set(parts))) or r"(?!)")


# --- worker-side functions (module level so they pickle) ---------------------------

_STATE: dict = {}


def _init_worker(enabled, index, triggers):
    from devlint.checks import all_checks

    _STATE.update(enabled=enabled, index=index, triggers=triggers, checks=all_checks())


def _facts_of(file: SourceFile) -> project_index.FileFacts:
    data = _read(file)
    if isinstance(data, Finding) or not project_index.PREFILTER.search(data.decode("latin-1")):
        return project_index.FileFacts()
    return analyze.facts(data, file.display, file.module)


def _check_one(file: SourceFile) -> list[Finding]:
    data = _read(file)
    if isinstance(data, Finding):
        return [data] if analyze.UNPARSABLE in _STATE["enabled"] else []
    if not _STATE["triggers"].search(data.decode("latin-1")):
        parsed = analyze.parse(data, file.display)  # still report files that do not parse
        return [parsed.error] if parsed.error and analyze.UNPARSABLE in _STATE["enabled"] else []
    return analyze.check(data, file.display, file.module, _STATE["enabled"], _STATE["index"], _STATE["checks"]).findings


def _map(function, files: list[SourceFile], jobs: int, initargs=()):
    total = 0
    for f in files:
        try:
            total += f.path.stat().st_size
        except OSError:
            pass
    if jobs <= 1 or len(files) < 2 or total < _PARALLEL_BYTES:
        if initargs:
            _init_worker(*initargs)
        return [function(f) for f in files]
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    chunk = max(1, len(files) // (jobs * 8))
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker if initargs else None, initargs=initargs) as pool:
        return list(pool.map(function, files, chunksize=chunk))


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def build_index(files: list[SourceFile], jobs: int) -> project_index.ProjectIndex:
    return project_index.ProjectIndex(_map(_facts_of, files, jobs))


def lint(
    files: list[SourceFile],
    settings: Settings,
    enabled: frozenset[str],
    jobs: int = 1,
) -> LintResult:
    index = build_index(files, jobs) if "DL012" in enabled or "DL003" in enabled else project_index.ProjectIndex()
    triggers = _triggers(enabled, index)
    outcomes = _map(_check_one, files, jobs, initargs=(enabled, index, triggers))
    result = LintResult(files=len(files))
    for file, findings in zip(files, outcomes):
        ignored = settings.ignored_for(_root_relative(file, settings))
        result.findings.extend(f for f in findings if f.code not in ignored)
    result.findings.sort(key=lambda f: f.sort_key)
    return result


def _root_relative(file: SourceFile, settings: Settings) -> str:
    try:
        return file.path.relative_to(settings.root).as_posix()
    except ValueError:
        return file.display


def lint_source(
    text: str,
    filename: str = "example.py",
    module: str = "example",
    enabled: frozenset[str] | None = None,
) -> list[Finding]:
    """Check one module given as text (its own definitions form the project index)."""
    from devlint.checks import all_checks

    enabled = frozenset(catalog.load()) if enabled is None else enabled
    data = text.encode("utf-8")
    index = project_index.ProjectIndex([analyze.facts(data, filename, module)])
    return analyze.check(data, filename, module, enabled, index, all_checks()).findings


def fix_source(
    text: str,
    unsafe: bool = False,
    filename: str = "example.py",
    module: str = "example",
    enabled: frozenset[str] | None = None,
) -> tuple[str, list[Finding]]:
    """Apply fixes to one module given as text; return the new text and what remains."""
    from devlint import fixing
    from devlint.static.source import Source

    def recheck(new_text: str) -> list[Finding]:
        return lint_source(new_text, filename, module, enabled)

    outcome = fixing.fix_source(Source(text), recheck(text), recheck, unsafe)
    return outcome.text, outcome.remaining
