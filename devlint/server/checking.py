"""The editor integrations' one door into devlint's checking (server and flake8 plugin).

Everything they need from the check pipeline goes through here: settings, the project's
files and their facts (the DL012/DL003 index), checking one text, fixing one text,
merging a runtime report, notebooks as one module, the rule catalog. When the pipeline
moves, only this module follows it. Nothing here imports torch or pygls.
"""

from __future__ import annotations

import functools
import io
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path

from devlint import catalog, config, discovery, fixing, merge
from devlint.cache import Cache, content_key, header_key
from devlint.findings import Applicability, Edit, Finding, Fix, Location
from devlint.static import analyze, noqa
from devlint.static import index as project_index
from devlint.static.document import NotANotebook, Notebook, python_of
from devlint.static.source import Source

Settings = config.Settings
ConfigError = config.ConfigError
ReportError = merge.ReportError
Report = merge.Report
FileFacts = project_index.FileFacts
ProjectIndex = project_index.ProjectIndex
UNPARSABLE = analyze.UNPARSABLE
NOTEBOOK_SUFFIX = ".ipynb"
__all__ = ["Applicability", "Edit", "Finding", "Fix", "Location"]


# --- settings and files --------------------------------------------------------------


def find_config(start: Path) -> Path | None:
    return config.find_config(start)


def load_settings(config_path: Path | None, root: Path) -> Settings:
    """Raises ConfigError, in one line."""
    return config.load(config_path, root)


def relative(path: Path, settings: Settings) -> str:
    try:
        return path.relative_to(settings.root).as_posix()
    except ValueError:
        return path.name


def is_excluded(path: Path, settings: Settings) -> bool:
    return settings.is_excluded(relative(path, settings))


def ignored_codes(path: Path, settings: Settings) -> frozenset[str]:
    return settings.ignored_for(relative(path, settings))


def module_name(path: Path, root: Path) -> str:
    return discovery.module_name(path, root)


def project_files(settings: Settings) -> list[Path]:
    """The files `devlint check ROOT` would check."""
    files, _ = discovery.discover([settings.root], settings)
    return [f.path for f in files]


def is_source(path: Path) -> bool:
    return path.suffix in discovery.SOURCE_SUFFIXES


# --- project facts ---------------------------------------------------------------------


def results_cache(settings: Settings, enabled: frozenset[str]) -> Cache:
    """The check cache of `devlint check`, read for file facts; never written from here
    (a partial save would drop the entries of files this session did not look at)."""
    return Cache(settings.root, header_key(enabled))


def facts_of_file(path: Path, display: str, module: str, cache: Cache) -> FileFacts:
    """What a file on disk adds to the project index; the cache answers for unchanged content."""
    try:
        raw = path.read_bytes()
        data, _ = python_of(path.name, raw)
    except (OSError, NotANotebook):
        return FileFacts()
    if not project_index.worth_collecting(data.decode("latin-1")):
        return FileFacts()
    key = content_key(raw)
    cached = cache.facts(key)
    if cached is not None:
        return cached
    return analyze.facts(data, display, module)


def facts_of_text(text: str, display: str, module: str) -> FileFacts:
    if not project_index.worth_collecting(text):
        return FileFacts()
    return analyze.facts(_bytes(text), display, module)


def build_index(facts) -> ProjectIndex:
    return ProjectIndex(list(facts))


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


def check_text(text: str, display: str, module: str, enabled: frozenset[str], index: ProjectIndex, ignored: frozenset[str]) -> Checked:
    data = _bytes(text)
    index.start_recording()
    found = analyze.check(data, display, module, enabled | {UNPARSABLE}, index, _checks()).findings
    deps = index.recorded()
    parsed = not any(f.code == UNPARSABLE for f in found) or analyze.parse(data, display).tree is not None
    kept = [f for f in found if f.code in enabled and f.code not in ignored]
    return Checked(kept, parsed, deps)


def fix_text(text: str, display: str, module: str, enabled: frozenset[str], index: ProjectIndex, ignored: frozenset[str], unsafe: bool, extra: list[Finding] = ()) -> str:
    """The text after `devlint check --fix` (and `--unsafe-fixes`); `extra`: runtime-only findings."""
    source = analyze.parse(_bytes(text), display).source
    if source is None:
        return text

    def recheck(new_text: str) -> list[Finding]:
        found = analyze.check(source.to_bytes(new_text), display, module, enabled, index, _checks()).findings
        return [f for f in found if f.code not in ignored]

    return fixing.fix_source(source, recheck(source.text) + list(extra), recheck, unsafe).text


def fix_allowed(fix: Fix | None, unsafe: bool) -> bool:
    return fixing.allowed(fix, unsafe)


def parses(text: str) -> bool:
    return fixing.parses(text)


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


def merge_report(checked: Checked, report: Report, path: Path, display: str, text: str, enabled: frozenset[str], ignored: frozenset[str]) -> tuple[list[Finding], list[str]]:
    """Findings with what the runtime saw at their lines (confirmed, runtime-only), and notes.
    Runtime-only findings obey selection, per-file ignores and `# noqa` as static ones do."""
    parsed = []

    def read(_display):
        if not parsed:
            parsed.append(analyze.parse(_bytes(text), display))
        return (parsed[0].source, parsed[0].tree) if parsed[0].tree else (None, None)

    merged = merge.merge(checked.findings, report, {os.path.realpath(path): display}, read)
    kept = [
        f for f in merged.findings
        if not (f.runtime and f.runtime.get("runtime_only"))
        or (f.code in enabled and f.code not in ignored and not suppressed(text, f.code, f.location.row, f.end_location.row))
    ]
    return kept, merged.notes


def runtime_only(finding: Finding) -> bool:
    return bool(finding.runtime and finding.runtime.get("runtime_only"))


# --- notebooks ------------------------------------------------------------------------------


class NotebookModule:
    """A notebook's code cells as the one module devlint checks, and the way back to cells."""

    def __init__(self, cells: list[str]):
        data = {"cells": [{"cell_type": "code", "source": text} for text in cells]}
        self._notebook = Notebook(data, indent=None, trailing_newline=False, code_cells=list(range(len(cells))))
        self.text = self._notebook.python()

    def locate(self, row: int) -> tuple[int, int]:
        """Module row -> (0-based cell index, 1-based row in the cell); cell -1: a marker line."""
        cell, in_cell = self._notebook.locate(row)
        return cell - 1, in_cell

    def cells_after(self, module_text: str) -> list[str]:
        """Each cell's text once the module is `module_text` (magics restored)."""
        import copy
        import json

        data = json.loads(copy.deepcopy(self._notebook).with_python(module_text))
        return [cell["source"] for cell in data["cells"]]


# --- the catalog ------------------------------------------------------------------------------


def rule(code: str) -> catalog.Rule | None:
    return catalog.load().get(code)


def rule_url(code: str) -> str | None:
    found = rule(code)
    return found.url if found else None
