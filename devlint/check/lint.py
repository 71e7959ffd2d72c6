"""The index and check stages of `devlint check`: project facts, then every file's findings.

Two passes over the files. The first collects project facts (which definitions
default `device` to CUDA, which helpers take type strings) from the few files that
can hold them; the second checks every file against those facts. Work the cache
already holds is skipped; the rest runs in worker processes when there is enough of
it, with the same result as a serial run (output is sorted).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from devlint import catalog
from devlint.check.cache import Cache, content_key
from devlint.check.read import Work, from_bytes, read
from devlint.check.suppress import Suppression
from devlint.check.workers import Workers
from devlint.findings import Finding
from devlint.libraries import Libraries, imports
from devlint.static import analyze, configs
from devlint.static import index as project_index

# Less source than this is checked in-process: starting workers would cost more.
_PARALLEL_BYTES = 512 * 1024


def _triggers(enabled: frozenset[str], index: project_index.ProjectIndex) -> tuple[str, ...]:
    """Substrings one of which any file with a possible finding contains (each rule lists
    its own; DL012 adds the names of the callables the index knows, DL017/DL018 the
    launches and factory calls of the kernels it knows, DL027 the extension modules that
    setup scripts build, DL014 the module globals of providers another module assigns)."""
    words = set()
    for code in enabled:
        words.update(catalog.get(code).triggers)
    if "DL012" in enabled:
        words.update(index.callable_names())
    if enabled & {"DL002", "DL008"}:
        words.update(f"{name}(" for name in index.device_helper_names())
    if "DL007" in enabled:
        words.update(index.subclass_names(frozenset(catalog.api("DL007", "wrappers", []))))
    if enabled & {"DL017", "DL018"}:
        words.update(word for name in index.kernel_names() for word in (f"{name}[", f"{name}("))
    if "DL027" in enabled:
        words.update(index.extension_names())
    if "DL014" in enabled:
        words.update(index.provider_list_names())
    return tuple(sorted(words))


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


def _digest(words: tuple[str, ...]) -> str:
    return content_key("\0".join(words).encode())


# --- worker-side functions (module level so they pickle) ---------------------------

_STATE: dict = {}
# Trees the index stage parsed in this process, by content key and file, for the check stage to take
# (forked check workers inherit them): the files that hold facts are parsed once, not twice.
_PARSED: dict[tuple[str, str], analyze.Parsed] = {}


def _init_worker(enabled, index, checks, checked=frozenset(), undecided=frozenset(), triggers=()):
    _STATE.update(enabled=enabled, index=index, checks=checks, checked=checked, undecided=undecided, triggers=triggers)


def _init_from(initargs: tuple) -> None:
    _init_worker(*initargs)


def _facts_of(work: Work) -> project_index.FileFacts:
    parsed = _PARSED[_parsed_key(work)] = analyze.parse(work.data, work.file.display)
    return analyze.facts(work.data, work.file.display, work.file.module, parsed)


def _check(work: Work) -> tuple[list[Finding], dict[str, str], bool]:
    """Findings of one file, the index lookups they depended on, and whether the rules ran.
    A file that mentions no trigger (its key is neither in `checked`, nor in `undecided`
    with a trigger in its text) is only parsed: it goes through the same workers, since
    parsing is most of the cost of a file either way. The text is searched here, in the
    workers, for the files the cache could not say (a tenth of a cold run's serial work)."""
    parsed = _PARSED.pop(_parsed_key(work), None)
    checked = work.key in _STATE["checked"] or (work.key in _STATE["undecided"] and _mentions(work.text, _STATE["triggers"]))
    if not checked:
        return _parse_only(work, _STATE["enabled"], parsed), {}, False
    index = _STATE["index"]
    index.start_recording()
    result = analyze.check(work.data, work.file.display, work.file.module, _STATE["enabled"], index, _STATE["checks"], parsed)
    return result.findings, index.recorded(), True


def _parse_only(work: Work, enabled: frozenset[str], parsed: analyze.Parsed | None = None) -> list[Finding]:
    """A file no rule could fire on is still parsed: one that does not parse is reported."""
    if analyze.UNPARSABLE not in enabled:
        return []
    error = parsed.error if parsed is not None else analyze.syntax_error(work.data, work.file.display)
    return [error] if error else []


def _parallel(items: list[Work], jobs: int) -> bool:
    """Is there enough to do to start worker processes for it?"""
    return jobs > 1 and len(items) >= 2 and sum(len(w.data) for w in items) >= _PARALLEL_BYTES


def _workers(jobs: int) -> Workers | None:
    """Workers kept through the index and check stages, where processes can be forked
    (multiprocessing is imported only when they start)."""
    return Workers(jobs) if jobs > 1 and hasattr(os, "fork") else None


def _parsed_key(work: Work) -> tuple[str, str]:
    """How a parsed tree waits in _PARSED, and how the workers know which of them holds it."""
    return (work.key, work.file.display)


def _map(function, items: list[Work], jobs: int, initargs=(), meanwhile=None):
    """`[function(w) for w in items]`, in worker processes when there is enough to do;
    `meanwhile()` runs in this process while they work (work of its own that does not
    wait for theirs)."""
    if not _parallel(items, jobs):
        if initargs:
            _init_worker(*initargs)
        results = [function(w) for w in items]
        if meanwhile is not None:
            meanwhile()
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    chunk = max(1, len(items) // (jobs * 8))
    initializer = _init_worker if initargs else None
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        results = pool.map(function, items, chunksize=chunk)  # every chunk submitted now
        if meanwhile is not None:
            meanwhile()
        return list(results)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _text_fact(work: Work, cache: Cache, kind: str, read):
    """`read(text)` of a file's text (a JSON value), from the cache when this content was seen."""
    found = cache.text_fact(work.key, kind)
    if found is None:
        found = read(work.text)
        cache.store_text_fact(work.key, kind, found)
    return found


def build_index(
    works: list[Work],
    jobs: int,
    cache: Cache,
    libraries: Libraries | None = None,
    workers: Workers | None = None,
    builds: tuple[configs.ConfigBuild, ...] = (),
) -> project_index.ProjectIndex:
    """The project facts of every file that can hold one (from the cache where it can): the
    files worth collecting, then, until none is left, the files the facts so far want.
    Facts are in file order whatever the cache held: where two files give the same fact
    (the first caller passing a type string) the first one is named, cold or warm.
    `workers`: processes that keep the trees they parse for the check stage."""
    _PARSED.clear()  # only this index's trees wait for the check stage
    readable = [w for w in works if w.data is not None]
    position = {id(w): i for i, w in enumerate(readable)}
    found: dict[int, project_index.FileFacts] = {}
    batch = [w for w in readable if project_index.catalog_module(w.file.module) or _text_fact(w, cache, "collect", project_index.text_worth_collecting)]
    collected = {id(w) for w in batch}
    text_facts: dict = {}

    def read_text_facts() -> None:
        """What the index takes from the files' text alone, and from the libraries they use:
        read while the workers collect the first facts, which it does not wait for."""
        if text_facts:
            return
        text_facts["library"] = None if libraries is None else libraries.defaults_for(_used_names(readable, cache), _packages(readable))
        text_facts["imported"] = _taken_names(readable, cache)
        text_facts["aliases"] = _aliases(readable, cache)

    while batch:
        todo = []
        for work in batch:
            cached = cache.facts(work.key)
            if cached is not None:
                found[position[id(work)]] = cached
            else:
                todo.append(work)
        if workers is not None and todo and (workers.started or _parallel(todo, jobs)):  # started: they keep its trees
            made = workers.spread(_facts_of, todo, [_parsed_key(w) for w in todo], [len(w.data) for w in todo], read_text_facts)
        else:
            made = _map(_facts_of, todo, jobs, meanwhile=read_text_facts)
        for work, facts in zip(todo, made):
            cache.store_facts(work.key, facts)
            found[position[id(work)]] = facts
        pattern = project_index.wanted(list(found.values()))
        batch = [w for w in readable if id(w) not in collected and pattern is not None and pattern.search(w.text)]
        collected.update(id(w) for w in batch)
    read_text_facts()
    return project_index.ProjectIndex(
        [found[i] for i in sorted(found)],
        library=text_facts["library"],
        imported=text_facts["imported"],
        aliases=text_facts["aliases"],
        builds=builds,
    )


def _aliases(works: list[Work], cache: Cache) -> dict[str, str]:
    """What the project's modules re-export (imports.aliases)."""
    table: dict[str, str] = {}
    for work in works:
        exported = _text_fact(work, cache, "exports", lambda text: [list(e) for e in imports.reexports(text)])
        if exported:
            table.update(imports.aliases(work.file.module, work.file.path.name == "__init__.py", [tuple(e) for e in exported]))
    return table


def _taken_names(works: list[Work], cache: Cache) -> set[str]:
    """The names the project's files take from other modules (imports.taken_names)."""
    return {name for work in works for name in _text_fact(work, cache, "takes", lambda text: sorted(imports.taken_names(text)))}


def _used_names(works: list[Work], cache: Cache) -> set[str]:
    """The library names the project imports (libraries.imports)."""
    return {name for work in works for name in _text_fact(work, cache, "uses", lambda text: sorted(imports.used_names(text)))}


def _packages(works: list[Work]) -> set[str]:
    """The project's own top-level packages and modules: never read as libraries."""
    return {w.file.module.split(".")[0] for w in works if w.file.module}


def needs_index(enabled: frozenset[str]) -> bool:
    """Is a project index needed? Every static rule may ask it (a CUDA default, a selection
    made before the call, a process group's set-up), so only a run of runtime-only codes
    or of DL901 goes without. A hand list of the rules that ask drifted: `--select
    DL013` reported barriers that a full run, which had the index, found selected."""
    rules = catalog.load()
    return any(code != "DL901" and code in rules and rules[code].scope == "static" for code in enabled)


def check_files(
    works: list[Work],
    enabled: frozenset[str],
    index: project_index.ProjectIndex,
    checks: Callable[[], list],
    jobs: int,
    cache: Cache,
    workers: Workers | None = None,
) -> tuple[list[list[Finding]], int]:
    """Each file's findings, as the user sees the file (notebook cells), and how many
    files came from the cache. `checks` gives the checks when a file is to be checked;
    `workers`, the index stage's processes, check the files whose trees they hold."""
    triggers = _triggers(enabled, index)
    digest = _digest(triggers)
    outcome: dict[int, list[Finding]] = {}
    from_cache = 0
    todo, checked_keys, undecided = [], set(), set()
    for i, work in enumerate(works):
        if work.error is not None:
            outcome[i] = [work.error] if analyze.UNPARSABLE in enabled else []
            continue
        checked = cache.mentions(work.key, digest)
        if checked is None and not cache.holds_findings(work.key):
            todo.append(i)  # nothing cached to compare with: the worker searches the text
            undecided.add(work.key)
            continue
        if checked is None:
            checked = _mentions(work.text, triggers)
        cached = cache.findings(work.key, work.file.display, index, checked)
        if cached is not None:
            outcome[i] = cached
            from_cache += 1
        else:
            todo.append(i)
            if checked:
                checked_keys.add(work.key)
    initargs = (enabled, index, checks() if todo else [], frozenset(checked_keys), frozenset(undecided), triggers)
    items = [works[i] for i in todo]
    if workers is not None and items and (workers.started or _parallel(items, jobs)):
        workers.each(_init_from, initargs)
        made = workers.map(_check, items, [_parsed_key(w) for w in items])
    else:
        made = _map(_check, items, jobs, initargs=initargs)
    for i, (findings, deps, checked) in zip(todo, made):
        outcome[i] = works[i].for_user(findings)
        cache.store_findings(works[i].key, outcome[i], deps, checked=checked, triggers=digest)
    _PARSED.clear()  # a long-lived process (the language server) keeps no trees between runs
    cache.save()
    return [outcome[i] for i in range(len(works))], from_cache


@dataclass
class Result:
    """What the check stages found, and what the fix stage needs to re-check."""

    works: list[Work]
    index: project_index.ProjectIndex
    checks: list | None  # None until a file is checked (static_checks)
    findings: list[Finding] = field(default_factory=list)
    from_cache: int = 0
    enabled: frozenset[str] = frozenset()  # the rules checked

    def static_checks(self) -> list:
        """The checks, imported on first use: importing the 36 check modules was a sixth of
        a run answered from the cache, which checks nothing."""
        if self.checks is None:
            from devlint.checks import all_checks

            self.checks = all_checks()
        return self.checks


def lint(
    files: list, suppression: Suppression, jobs: int = 1, cache: Cache | None = None, libraries: Libraries | None = None, config_files: list = ()
) -> Result:
    """Read, index and check `files`; findings sorted, per-file ignores applied. Library
    knowledge comes from `libraries` (None: the catalog's tables); `config_files`: the YAML
    found beside them, which may build their classes."""
    return lint_works([read(f) for f in files], suppression, jobs, cache, libraries, read_builds(config_files))


def read_builds(config_files: list) -> tuple[configs.ConfigBuild, ...]:
    """What the configs build (static/configs.py); an unreadable one builds nothing."""
    found: list[configs.ConfigBuild] = []
    for file in config_files:
        try:
            text = file.path.read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        found += configs.builds(file.display, text)
    return tuple(found)


def lint_works(
    works: list[Work],
    suppression: Suppression,
    jobs: int = 1,
    cache: Cache | None = None,
    libraries: Libraries | None = None,
    builds: tuple[configs.ConfigBuild, ...] = (),
) -> Result:
    """`builds`: what the project's configs build (read_builds)."""
    cache = cache or Cache.disabled()
    enabled = suppression.enabled
    workers = _workers(jobs)
    try:
        index = build_index(works, jobs, cache, libraries, workers, builds) if needs_index(enabled) else project_index.ProjectIndex()
        result = Result(works, index, None, enabled=enabled)
        per_file, from_cache = check_files(works, enabled, index, result.static_checks, jobs, cache, workers)
    finally:
        if workers is not None:
            workers.close()
    result.findings = [f for work, found in zip(works, per_file) for f in suppression.per_file(found, work.file)]
    result.findings.sort(key=lambda f: f.sort_key)
    result.from_cache = from_cache
    return result


def with_python(works: list[Work], python: dict[str, bytes]) -> list[Work]:
    """`works` with some files' Python replaced (a notebook's cells joined), under fresh
    cache keys: what the fix stage re-indexes between its structural and text fixes."""
    return [
        replace(w, data=python[w.file.display], key=content_key(python[w.file.display])) if w.file.display in python else w
        for w in works
    ]


def replaced(works: list[Work], contents: dict[str, bytes]) -> list[Work]:
    """`works` with some files' content (as stored: a notebook's JSON) replaced."""
    return [from_bytes(w.file, contents[w.file.display]) if w.file.display in contents else w for w in works]
