"""The flake8 plugin (entry point `flake8.extension`, codes `DL`): `flake8 --select DL`
reports what `devlint check` reports.

flake8 hands over one file at a time; the project index (DL012, DL003) comes from the
project the file belongs to, built once per process and read from the check cache where
it can be. devlint's `[tool.devlint]` applies first, as in `devlint check` (exclude,
select, per-file-ignores, runtime-report); flake8's own `# noqa`, `--select` and
`--per-file-ignores` apply on top, as for any plugin. Never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from devlint import __version__
from devlint.server import checking
from devlint.server.project import Project

_PROJECTS: dict[Path, Project] = {}


def _project(path: Path) -> Project:
    """The project holding `path`: the nearest [tool.devlint] above it, else the
    working directory (as `devlint check .` run there)."""
    config_path = checking.find_config(path.parent)
    cwd = Path.cwd()
    root = config_path.parent if config_path else cwd if cwd in path.parents else path.parent
    if root not in _PROJECTS:
        project = Project(config_path, root, display_base=cwd)
        project.report()
        report = project.settings.runtime_report
        if project.report_problem and report is not None and report.exists():  # a missing one is merely not merged
            raise checking.ReportError(project.report_problem)
        _PROJECTS[root] = project
    return _PROJECTS[root]


class DevlintChecker:
    """A tree plugin: flake8 passes `tree`, devlint parses the text itself (it needs the
    tokens and its own positions), so only `lines` is read."""

    name = "devlint"
    version = __version__

    def __init__(self, tree, filename: str, lines: list[str]):
        self.path = Path(os.path.abspath(filename))
        self.lines = lines
        self.project = _project(self.path)  # here, so flake8 reports a bad configuration in one line

    def run(self):
        if self.project.excluded(self.path):
            return
        for f in self.project.check(self.path, "".join(self.lines)).findings:
            yield f.location.row, f.location.column - 1, f"{f.code} {f.message}", type(self)
