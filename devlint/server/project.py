"""One project as an editor sees it: its settings, its runtime report, and its project
index kept current file by file.

The index (which callables default to CUDA, which parameters receive CUDA type strings)
is built once from the files `devlint check` would read, unchanged files' facts coming
from the check cache. After that an edit re-collects the facts of that one file, and the
index is rebuilt from the per-file facts only when they changed. Open documents stand
in for their files on disk. The settings and the runtime report are re-read when their
files change (a stat per check notices it even without file-watch events). Fixing
(structural fixes across files included) is asked for on demand and reads the project
then.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from devlint.server import checking


def _stamp(path: Path | None) -> tuple | None:
    try:
        st = os.stat(path) if path is not None else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st else None


@dataclass
class Result:
    """A checked text: findings (module coordinates for a notebook), whether it parsed,
    its index lookups, and notes from merging the runtime report."""

    findings: list[checking.Finding]
    parsed: bool
    deps: dict[str, str]
    base: Path  # what relative file names in findings and edits are relative to
    notes: list[str] = field(default_factory=list)


class Project:
    """Raises checking.ConfigError when the configuration is bad."""

    def __init__(self, config_path: Path | None, root: Path, display_base: Path | None = None):
        self.config_path = config_path
        self.settings = checking.load_settings(config_path, root)
        self.root = self.settings.root
        self.enabled = self.settings.enabled()
        self.suppression = checking.Suppression(self.settings, self.enabled)
        self.display_base = display_base or self.root
        self._config_stamp = _stamp(config_path)
        self._disk: dict[Path, checking.FileFacts] | None = None
        self._configs: dict[Path, tuple] = {}  # what each config on disk builds (read with _disk)
        self._open: dict[Path, checking.FileFacts] = {}
        self._index: checking.ProjectIndex | None = None
        self._report: checking.Report | None = None
        self._report_stamp: tuple | None = None
        self.report_problem: str | None = None  # why the configured report is not merged (set when read)

    # --- names ---------------------------------------------------------------------------

    def file(self, path: Path) -> checking.SourceFile:
        """The file as `devlint check` run from display_base names it."""
        try:
            display = path.relative_to(self.display_base).as_posix()
        except ValueError:
            display = str(path)
        return checking.SourceFile(path, display, checking.module_name(path, self.root))

    def excluded(self, path: Path) -> bool:
        return checking.is_excluded(path, self.settings)

    def config_changed(self) -> bool:
        return _stamp(self.config_path) != self._config_stamp

    def config_seen(self, config_path: Path | None) -> None:
        """Keep these settings for `config_path` as it is now (it could not be loaded):
        a later change to it is noticed, the broken version is not retried."""
        self.config_path, self._config_stamp = config_path, _stamp(config_path)

    def report_changed(self) -> bool:
        return _stamp(self.settings.runtime_report) != self._report_stamp

    # --- the index -----------------------------------------------------------------------

    @property
    def index(self) -> checking.ProjectIndex:
        if self._index is None:
            facts = {**self._disk_facts(), **self._open}
            builds = tuple(b for _, held in sorted(self._configs.items()) for b in held)
            self._index = checking.build_index(facts.values(), self.display_base, builds)
        return self._index

    def _disk_facts(self) -> dict[Path, checking.FileFacts]:
        if self._disk is None:
            cache = checking.results_cache(self.settings, self.enabled, self.display_base)
            files, configs = checking.project_files(self.settings)
            self._configs = {path: checking.builds_of_config(self.file(path)) for path in configs}
            self._disk = {path: checking.facts_of_file(self.file(path), cache) for path in files}
        return self._disk

    def _facts(self, path: Path) -> checking.FileFacts:
        facts = self._open[path] if path in self._open else self._disk_facts().get(path)
        return facts or checking.FileFacts()

    def _put(self, table: dict, path: Path, facts: checking.FileFacts | None) -> bool:
        before = self._facts(path)
        if facts is None:
            table.pop(path, None)
        else:
            table[path] = facts
        changed = self._facts(path) != before
        if changed:
            self._index = None
        return changed

    def set_text(self, path: Path, text: str | None) -> bool:
        """An open document's Python text (None: closed, its file on disk counts again).
        Returns whether the index changed."""
        if self.excluded(path):
            return False
        facts = None if text is None else checking.facts_of_text(text, self.file(path))
        return self._put(self._open, path, facts)

    def file_changed(self, path: Path) -> bool:
        """A file changed, appeared or went away on disk. Returns whether the index changed."""
        if self._disk is None:
            return False
        if checking.is_config(path):
            return self._config_changed(path)
        if not checking.is_source(path):
            return False
        if not path.is_file() or self.excluded(path):
            return self._put(self._disk, path, None)
        cache = checking.results_cache(self.settings, self.enabled, self.display_base)
        return self._put(self._disk, path, checking.facts_of_file(self.file(path), cache))

    def _config_changed(self, path: Path) -> bool:
        """A YAML config changed on disk: what it builds may differ (static/configs.py)."""
        before = self._configs.get(path, ())
        after = () if not path.is_file() or self.excluded(path) else checking.builds_of_config(self.file(path))
        if after == before:
            return False
        if after:
            self._configs[path] = after
        else:
            self._configs.pop(path, None)
        self._index = None
        return True

    def depends_on_changes(self, deps: dict[str, str]) -> bool:
        """Whether findings that looked these index keys up would differ under the index now."""
        index = self.index
        return any(index.digest(dep) != digest for dep, digest in deps.items())

    # --- the runtime report ----------------------------------------------------------------

    def report(self) -> checking.Report | None:
        path = self.settings.runtime_report
        stamp = _stamp(path)
        if path is None or stamp == self._report_stamp:
            return self._report
        self._report_stamp, self._report = stamp, None
        if stamp is None:
            self.report_problem = f"runtime report {path} (`runtime-report` in {self.config_path}) not found: not merged"
            return None
        try:
            self._report, self.report_problem = checking.load_report(path), None
        except checking.ReportError as exc:
            self.report_problem = str(exc)
        return self._report

    # --- checking and fixing -----------------------------------------------------------------

    def check(self, path: Path, text: str, notebook: bool = False) -> Result:
        """`text` is the document's Python (a notebook's module, see checking.NotebookModule)."""
        file = self.file(path)
        checked = checking.check_text(text, file, self.suppression, self.index)
        result = Result(checked.findings, checked.parsed, checked.deps, self.display_base)
        report = self.report()
        if report is not None and checked.parsed and not notebook:
            result.findings, result.notes = checking.merge_report(checked, report, file, text, self.suppression)
            result.findings.sort(key=lambda f: f.sort_key)
        return result

    def _works(self, overlays: dict[Path, bytes]) -> list[checking.Work]:
        paths = list(self._disk_facts()) + [p for p in overlays if p not in self._disk_facts()]
        return checking.works([self.file(p) for p in paths], overlays)

    def plan(self, findings: list[checking.Finding], overlays: dict[Path, bytes]) -> list[checking.Finding]:
        """Findings with their structural fixes planned and made edits; `overlays`: the
        contents (as stored) of the documents open in the editor."""
        return checking.plan(findings, self._works(overlays), self.index)

    def fix(self, findings: list[checking.Finding], unsafe: bool, overlays: dict[Path, bytes]) -> dict[Path, bytes]:
        """What `devlint check --fix` (`--unsafe-fixes`) makes of `findings`: the new content
        (as stored) of each file it changes."""
        project_works = self._works(overlays)
        cache = checking.results_cache(self.settings, self.enabled, self.display_base)
        contents = checking.fix_files(findings, project_works, self.index, self.suppression, unsafe, cache)
        by_display = {w.file.display: w.file.path for w in project_works}
        return {by_display[name]: content for name, content in contents.items()}
