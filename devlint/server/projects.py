"""Which project each file belongs to: the nearest `[tool.devlint]` above it, else the
workspace folder holding it (else its directory). Projects are made on first use and
reloaded when their configuration or runtime report changes; a configuration that
cannot be loaded is reported once and the last good settings stay. Used from the
checking thread only.
"""

from __future__ import annotations

from pathlib import Path

from devlint.server import checking
from devlint.server.project import Project


class Projects:
    def __init__(self, folders: list[Path]):
        self.folders = sorted(folders, key=lambda p: len(p.parts), reverse=True)  # innermost first
        self._configs: dict[Path, Path | None] = {}  # directory -> the config file governing it
        self._projects: dict[Path, Project] = {}  # root -> project
        self._problems: list[str] = []

    def take_problems(self) -> list[str]:
        """One-line messages for the user since the last call (bad configuration, unusable report)."""
        problems, self._problems = self._problems, []
        for project in self._projects.values():
            if project.report_problem:
                problems.append(project.report_problem)
                project.report_problem = None
        return problems

    def _root(self, directory: Path, config_path: Path | None) -> Path:
        if config_path is not None:
            return config_path.parent
        return next((f for f in self.folders if f == directory or f in directory.parents), directory)

    def for_path(self, path: Path) -> Project:
        directory = path.parent
        if directory not in self._configs:
            try:
                self._configs[directory] = checking.find_config(directory)
            except checking.ConfigError as exc:
                self._problems.append(str(exc))
                self._configs[directory] = None
        config_path = self._configs[directory]
        root = self._root(directory, config_path)
        project = self._projects.get(root)
        if project is None or project.config_path != config_path:
            project = self._load(config_path, root, project)
        return project

    def _load(self, config_path: Path | None, root: Path, previous: Project | None) -> Project:
        try:
            project = Project(config_path, root)
        except checking.ConfigError as exc:
            self._problems.append(f"{exc} (devlint keeps its previous settings)")
            project = previous or Project(None, root)
            project.config_seen(config_path)
        self._projects[root] = project
        return project

    def refresh(self) -> list[Project]:
        """Reload the projects whose configuration or runtime report changed; return them."""
        changed = []
        for root, project in list(self._projects.items()):
            if project.config_changed():
                changed.append(self._load(project.config_path, root, project))
            elif project.report_changed():
                changed.append(project)
        return changed

    def configs_moved(self) -> None:
        """A pyproject.toml appeared, changed or went away: which config governs which
        directory is looked up again."""
        self._configs.clear()

    def holding(self, path: Path) -> list[Project]:
        """The loaded projects whose tree holds `path`."""
        return [p for p in self._projects.values() if p.root in path.parents]
