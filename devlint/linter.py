"""The pipeline behind `devlint check`: read, index, check, filter.

Two passes over the files. The first collects project facts (which definitions
default `device` to CUDA) from the few files that can hold them; the second checks
every file against those facts. Work the cache already holds is skipped; the rest
runs in worker processes when there is enough of it, with the same result as a
serial run (output is sorted).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from devlint import catalog
from devlint.cache import Cache, content_key
from devlint.config import Settings
from devlint.discovery import SourceFile
from devlint.findings import Finding, Location
from devlint.static import analyze
from devlint.static import index as project_index
from devlint.static.document import Notebook, NotANotebook, python_of

# Less source than this is checked in-process: starting workers would cost more.
_PARALLEL_BYTES = 512 * 1024


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    from_cache: int = 0


@dataclass
class _Work:
    """One file's bytes (or the finding saying why it could not be read) and cache key."""

    file: SourceFile
    data: bytes | None  # Python source (a notebook's code cells joined)
    error: Finding | None
    key: str = ""  # hash of the file's bytes as stored
    notebook: Notebook | None = None

    def for_user(self, findings: list[Finding]) -> list[Finding]:
        """Findings as the user sees the file: notebook findings move to their cells."""
        return [self.notebook.to_cells(f) for f in findings] if self.notebook else findings

    @property
    def text(self) -> str:
        return self.data.decode("latin-1")  # enough to search for ASCII trigger words


def _read(file: SourceFile) -> _Work:
    loc = Location(1, 1)
    try:
        if not stat.S_ISREG(os.stat(file.path).st_mode):  # a FIFO or device would block or never end
            error = Finding(analyze.UNPARSABLE, "cannot read file: not a regular file", file.display, loc, loc)
            return _Work(file, None, error)
        raw = file.path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return _Work(file, None, Finding(analyze.UNPARSABLE, f"cannot read file: {reason}", file.display, loc, loc))
    try:
        data, notebook = python_of(file.display, raw)
    except NotANotebook as exc:
        return _Work(file, None, Finding(analyze.UNPARSABLE, str(exc), file.display, loc, loc))
    return _Work(file, data, None, content_key(raw), notebook)


def _triggers(enabled: frozenset[str], index: project_index.ProjectIndex) -> tuple[str, ...]:
    """Substrings one of which any file with a possible finding contains (each rule lists
    its own; DL012 adds the names of the callables the index knows)."""
    words = set()
    for code in enabled:
        words.update(catalog.get(code).triggers)
    if "DL012" in enabled:
        words.update(index.callable_names())
    return tuple(sorted(words))


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


# --- worker-side functions (module level so they pickle) ---------------------------

_STATE: dict = {}


def _init_worker(enabled, index):
    from devlint.checks import all_checks

    _STATE.update(enabled=enabled, index=index, checks=all_checks())


def _facts_of(work: _Work) -> project_index.FileFacts:
    return analyze.facts(work.data, work.file.display, work.file.module)


def _check(work: _Work) -> tuple[list[Finding], dict[str, str]]:
    """Findings of one file, and the index lookups they depended on."""
    index = _STATE["index"]
    index.start_recording()
    result = analyze.check(work.data, work.file.display, work.file.module, _STATE["enabled"], index, _STATE["checks"])
    return result.findings, index.recorded()


def _parse_only(work: _Work, enabled: frozenset[str]) -> list[Finding]:
    """A file no rule could fire on is still parsed: one that does not parse is reported."""
    parsed = analyze.parse(work.data, work.file.display)
    return [parsed.error] if parsed.error and analyze.UNPARSABLE in enabled else []


def _map(function, items: list, jobs: int, initargs=()):
    total = sum(len(w.data) for w in items)
    if jobs <= 1 or len(items) < 2 or total < _PARALLEL_BYTES:
        if initargs:
            _init_worker(*initargs)
        return [function(w) for w in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    chunk = max(1, len(items) // (jobs * 8))
    initializer = _init_worker if initargs else None
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        return list(pool.map(function, items, chunksize=chunk))


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _index(works: list[_Work], jobs: int, cache: Cache) -> project_index.ProjectIndex:
    facts: list[project_index.FileFacts] = []
    todo = []
    for work in works:
        if work.data is None or not project_index.worth_collecting(work.text):
            continue
        cached = cache.facts(work.key)
        if cached is not None:
            facts.append(cached)
        else:
            todo.append(work)
    for work, found in zip(todo, _map(_facts_of, todo, jobs)):
        cache.store_facts(work.key, found)
        facts.append(found)
    return project_index.ProjectIndex(facts)


def build_index(files: list[SourceFile], jobs: int = 1) -> project_index.ProjectIndex:
    return _index([_read(f) for f in files], jobs, Cache.disabled())


def lint(
    files: list[SourceFile],
    settings: Settings,
    enabled: frozenset[str],
    jobs: int = 1,
    cache: Cache | None = None,
) -> LintResult:
    cache = cache or Cache.disabled()
    works = [_read(f) for f in files]
    needs_index = "DL012" in enabled or "DL003" in enabled
    index = _index(works, jobs, cache) if needs_index else project_index.ProjectIndex()
    triggers = _triggers(enabled, index)
    result = LintResult(files=len(files))
    outcome: dict[int, list[Finding]] = {}
    to_check, to_parse = [], []
    for i, work in enumerate(works):
        if work.error is not None:
            outcome[i] = [work.error] if analyze.UNPARSABLE in enabled else []
            continue
        checked = _mentions(work.text, triggers)
        cached = cache.findings(work.key, work.file.display, index, checked)
        if cached is not None:
            outcome[i] = cached
            result.from_cache += 1
        elif checked:
            to_check.append(i)
        else:
            to_parse.append(i)
    checked_works = [works[i] for i in to_check]
    for i, (findings, deps) in zip(to_check, _map(_check, checked_works, jobs, initargs=(enabled, index))):
        outcome[i] = works[i].for_user(findings)
        cache.store_findings(works[i].key, outcome[i], deps, checked=True)
    for i in to_parse:  # cheap: no worker processes
        outcome[i] = works[i].for_user(_parse_only(works[i], enabled))
        cache.store_findings(works[i].key, outcome[i], {}, checked=False)
    cache.save()
    for i, work in enumerate(works):
        ignored = settings.ignored_for(root_relative(work.file, settings))
        result.findings.extend(f for f in outcome[i] if f.code not in ignored)
    result.findings.sort(key=lambda f: f.sort_key)
    return result


def root_relative(file: SourceFile, settings: Settings) -> str:
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
