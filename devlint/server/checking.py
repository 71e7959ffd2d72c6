"""The editor integrations' one door into devlint's checking (server and flake8 plugin).

Everything they need from the check pipeline goes through here: settings, the project's
files and their facts (the DL012/DL003 index), checking one text, fixing one text,
merging a runtime report, notebooks as one module, the rule catalog. When the pipeline
moves, only this module follows it. Nothing here imports torch or pygls.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path

from devlint import catalog, config
from devlint.check import fix as fixing
from devlint.check import lint, merge, thread
from devlint.check.cache import Cache, content_key, header_key
from devlint.check.discover import (
    CONFIG_SUFFIXES,
    SOURCE_SUFFIXES,
    SourceFile,
    find,
    module_name,
)
from devlint.check.read import Work, from_bytes, read
from devlint.check.suppress import Suppression
from devlint.findings import Applicability, Edit, Finding, Fix, Location
from devlint.libraries import imports
from devlint.static import analyze, noqa
from devlint.static import index as project_index
from devlint.static.configs import ConfigBuild
from devlint.static.document import NotANotebook, Notebook, python_of
from devlint.static.source import Source, UndecodableSource

Settings = config.Settings
ConfigError = config.ConfigError
ReportError = merge.ReportError
Report = merge.Report
FileFacts = project_index.FileFacts
ProjectIndex = project_index.ProjectIndex
UNPARSABLE = analyze.UNPARSABLE
__all__ = ["Applicability", "Edit", "Finding", "Fix", "Location", "SourceFile", "Suppression", "Work", "module_name"]


# --- settings and files --------------------------------------------------------------


def find_config(start: Path) -> Path | None:
    return config.find_config(start)


def load_settings(config_path: Path | None, root: Path) -> Settings:
    """Raises ConfigError, in one line."""
    return config.load(config_path, root)


def _relative(path: Path, settings: Settings) -> str:
    try:
        return path.relative_to(settings.root).as_posix()
    except ValueError:
        return path.name


def is_excluded(path: Path, settings: Settings) -> bool:
    return settings.is_excluded(_relative(path, settings))


def project_files(settings: Settings) -> tuple[list[Path], list[Path]]:
    """The files `devlint check ROOT` would check, and the configs it would read."""
    found = find([settings.root], settings)
    return [f.path for f in found.files], [c.path for c in found.configs]


def is_source(path: Path) -> bool:
    return path.suffix in SOURCE_SUFFIXES


def is_config(path: Path) -> bool:
    return path.suffix in CONFIG_SUFFIXES


def builds_of_config(file: SourceFile) -> tuple[ConfigBuild, ...]:
    """What a config on disk builds, as `devlint check` reads it."""
    return lint.read_builds([file])
# --- project facts ---------------------------------------------------------------------


def results_cache(settings: Settings, enabled: frozenset[str], display_base: Path) -> Cache:
    """The check cache of `devlint check` run from `display_base`, read for file facts; never
    written from here (a partial save would drop the entries of files this session did not
    look at)."""
    return Cache(settings.root, header_key(enabled, display_base))


def facts_of_file(file: SourceFile, cache: Cache) -> FileFacts:
    """What a file on disk adds to the project index; the cache answers for unchanged content."""
    try:
        raw = file.path.read_bytes()
        data, _ = python_of(file.display, raw)
    except (OSError, NotANotebook):
        return FileFacts()
    text = data.decode("latin-1")
    if not project_index.worth_collecting(text, file.module):
        return _with_imports(FileFacts(), text, file)
    cached = cache.facts(content_key(raw))
    if cached is not None:
        return _with_imports(cached, text, file)
    return _with_imports(analyze.facts(data, file.display, file.module), text, file)


def facts_of_text(text: str, file: SourceFile) -> FileFacts:
    if not project_index.worth_collecting(text, file.module):
        return _with_imports(FileFacts(), text, file)
    return _with_imports(analyze.facts(_bytes(text), file.display, file.module), text, file)


def _with_imports(facts: FileFacts, text: str, file: SourceFile) -> FileFacts:
    """The facts with the names the file takes from other modules and re-exports, as
    `devlint check` reads them."""
    aliases = imports.aliases(file.module, file.path.name == "__init__.py", imports.reexports(text))
    return dataclasses.replace(facts, taken=sorted(imports.taken_names(text)), aliases=aliases)


def build_index(facts, base: Path, builds: tuple[ConfigBuild, ...] = ()) -> ProjectIndex:
    """The index of the facts, whose file names are relative to `base` (the display base),
    and of what the project's configs build."""
    facts = list(facts)
    aliases = {alias: target for f in facts for alias, target in f.aliases.items()}
    return ProjectIndex(facts, base=str(base), imported={name for f in facts for name in f.taken}, aliases=aliases, builds=builds)


# --- checking and fixing ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _checks() -> list:
    from devlint.checks import all_checks

    return all_checks()


def _bytes(text: str) -> bytes:
    """The text as the file would hold it: in its PEP 263 encoding, so columns come out right."""
    data = text.encode("utf-8")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return text.encode(encoding) if encoding not in ("utf-8", "utf-8-sig") else data
    except (SyntaxError, LookupError, UnicodeEncodeError):
        return data


@dataclass
class Checked:
    """One text's findings, whether it parsed, and the index lookups its findings depend on."""

    findings: list[Finding]
    parsed: bool
    deps: dict[str, str]


def check_text(text: str, file: SourceFile, suppression: Suppression, index: ProjectIndex) -> Checked:
    """`text` (Python: a notebook's module) checked as `file`, with selection, per-file
    ignores and `# noqa` applied."""
    data = _bytes(text)
    index.start_recording()
    found = analyze.check(data, file.display, file.module, suppression.enabled | {UNPARSABLE}, index, _checks()).findings
    deps = index.recorded()
    parsed = not any(f.code == UNPARSABLE for f in found) or analyze.parse(data, file.display).tree is not None
    kept = suppression.per_file([f for f in found if f.code in suppression.enabled], file)
    return Checked(kept, parsed, deps)


def stored(text: str) -> bytes:
    """A Python text as its file would hold it."""
    return _bytes(text)


def works(files: list[SourceFile], overlays: dict[Path, bytes]) -> list[Work]:
    """The project's files as the fix stages read them; `overlays`: contents the editor
    holds (as stored: a notebook's JSON) in place of what is on disk."""
    return [from_bytes(f, overlays[f.path]) if f.path in overlays else read(f) for f in files]


def needs_plan(fix: Fix | None) -> bool:
    """A structural fix (a device threaded in from the callers) not planned yet."""
    return fix is not None and fix.threading is not None and fix.threading.plan is None


def plan(findings: list[Finding], project_works: list[Work], index: ProjectIndex) -> list[Finding]:
    """Findings with their structural fixes planned across the project and turned into
    edits (an edit in another file names it), or made display-only with the reason."""
    return fixing.materialize(thread.plan(findings, project_works, index), project_works)


def fix_files(findings: list[Finding], project_works: list[Work], index: ProjectIndex, suppression: Suppression, unsafe: bool, cache: Cache) -> dict[str, bytes]:
    """What `devlint check --fix` (`--unsafe-fixes`) makes of `findings`: the new content
    (as stored) of each file it changes, by display name. Nothing is written."""

    def reindex(python: dict[str, bytes]) -> ProjectIndex:
        changed = [
            w if w.file.display not in python else Work(w.file, python[w.file.display], None, content_key(python[w.file.display]), w.notebook)
            for w in project_works
        ]
        return lint.build_index(changed, 1, cache, builds=index.builds)

    linted = lint.Result(project_works, index, _checks())
    planned = thread.plan(findings, project_works, index)
    return fixing.fix_files(planned, linted, suppression, unsafe, write=False, reindex=reindex).contents


def python_text(content: bytes) -> str:
    """A Python file's text from its content as stored."""
    try:
        return Source.from_bytes(content).text
    except UndecodableSource:
        return content.decode("utf-8", "replace")


def notebook_content(cells: list[str]) -> bytes:
    """A notebook of these code cells, as an .ipynb file would hold it."""
    data = {"cells": [{"cell_type": "code", "metadata": {}, "source": text} for text in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(data).encode("utf-8")


def notebook_cells(content: bytes) -> list[str]:
    """The code cells' texts of a notebook's content."""
    cells = json.loads(content)["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells if c.get("cell_type") == "code"]


def fix_allowed(fix: Fix | None, unsafe: bool) -> bool:
    return fixing.allowed(fix, unsafe)


def apply_edits(text: str, edits) -> str:
    """`text` with non-overlapping edits applied, as `--fix` applies them."""
    return fixing.apply(Source(text), [Fix(Applicability.SAFE, "", tuple(edits))])[0]


def suppressed(text: str, code: str, *rows: int) -> bool:
    """Whether a `# noqa` comment in `text` suppresses `code` on any of `rows`."""
    return noqa.parse(text).suppresses(code, *rows)


# --- the runtime report ---------------------------------------------------------------------


def load_report(path: Path) -> Report:
    """Raises ReportError, in one line."""
    return merge.load(path)


def merge_report(checked: Checked, report: Report, file: SourceFile, text: str, suppression: Suppression) -> tuple[list[Finding], list[str]]:
    """Findings with what the runtime saw at their lines (confirmed, runtime-only), and notes.
    Runtime-only findings obey selection, per-file ignores and `# noqa` as static ones do."""
    parsed = []

    def read_text(_display):
        if not parsed:
            parsed.append(analyze.parse(_bytes(text), file.display))
        return (parsed[0].source, parsed[0].tree) if parsed[0].tree else (None, None)

    merged = merge.merge(checked.findings, report, {os.path.realpath(file.path): file.display}, read_text)
    kept = [f for f in merged.findings if not runtime_only(f) or suppression.keeps_placed(f, file, text)]
    return kept, merged.notes


def runtime_only(finding: Finding) -> bool:
    return bool(finding.runtime and finding.runtime.get("runtime_only"))


# --- notebooks ------------------------------------------------------------------------------


class NotebookModule:
    """A notebook's code cells as the one module devlint checks, and where its rows are in the cells."""

    def __init__(self, cells: list[str]):
        data = {"cells": [{"cell_type": "code", "source": text} for text in cells]}
        self._notebook = Notebook(data, indent=None, trailing_newline=False, code_cells=list(range(len(cells))))
        self.text = self._notebook.python()

    def locate(self, row: int) -> tuple[int, int]:
        """Module row -> (0-based cell index, 1-based row in the cell); cell -1: a marker line."""
        cell, in_cell = self._notebook.locate(row)
        return cell - 1, in_cell


# --- the catalog ------------------------------------------------------------------------------


def rule(code: str) -> catalog.Rule | None:
    return catalog.load().get(code)


def rule_url(code: str) -> str | None:
    found = rule(code)
    return found.url if found else None
