"""`[tool.devlint]` in pyproject.toml, merged with the command line.

Precedence follows ruff: the command line wins over the file. `--select` replaces the
configured selection, `--extend-select` adds to it, and `--ignore` is applied last.
A selector is a code (`DL005`), a prefix (`DL00`, `DL`) or `ALL`.
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from devlint import catalog

DEFAULT_EXCLUDE = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".mypy_cache", ".nox", ".pants.d",
    ".pytype", ".ruff_cache", ".svn", ".tox", ".venv", ".devlint_cache", "__pypackages__", "_build",
    "buck-out", "build", "dist", "node_modules", "site-packages", "venv", ".ipynb_checkpoints",
)

_KEYS = {
    "select", "extend-select", "ignore", "per-file-ignores", "exclude", "extend-exclude",
    "device", "respect-gitignore", "runtime-report", "python", "libraries",
}
LIBRARY_MODES = ("installed", "tables")


class ConfigError(Exception):
    """Bad configuration or options: reported in one line, exit code 2."""


@dataclass
class Settings:
    root: Path
    config_path: Path | None = None
    select: list[str] = field(default_factory=lambda: ["ALL"])
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    extend_exclude: list[str] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    respect_gitignore: bool = True
    runtime_report: Path | None = None  # a `devlint run` report to merge, relative to the config file
    python: str | None = None  # the interpreter whose libraries are read (docs/libraries.md)
    libraries: str = "installed"  # "installed": their installed source; "tables": devlint's tables only

    def enabled(
        self,
        select: list[str] | None = None,
        extend_select: list[str] | None = None,
        ignore: list[str] | None = None,
    ) -> frozenset[str]:
        """The rule codes to run, after applying the command line over the file."""
        codes = expand(self.select) | expand(self.extend_select)
        codes -= expand(self.ignore)
        if select:
            codes = expand(select)
        codes |= expand(extend_select or [])
        codes -= expand(ignore or [])
        return frozenset(codes)

    def ignored_for(self, relative: str) -> frozenset[str]:
        """Codes `per-file-ignores` turns off for a path relative to the project root."""
        codes: set[str] = set()
        for pattern, selectors in self.per_file_ignores.items():
            if matches(pattern, relative):
                codes |= expand(selectors)
        return frozenset(codes)

    def is_excluded(self, relative: str) -> bool:
        names, globs = self._exclusions()
        parts = relative.split("/")
        return not names.isdisjoint(parts) or any(matches(p, relative) for p in globs)

    def _exclusions(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """Exclude patterns split into plain names (a set lookup per path) and real globs."""
        patterns = (*self.exclude, *self.extend_exclude)
        key = hash(patterns)
        if getattr(self, "_exclusion_key", None) != key:
            plain = frozenset(p.rstrip("/") for p in patterns if not any(c in p for c in "*?[/"))
            self._exclusion_cache = (plain, tuple(p for p in patterns if p.rstrip("/") not in plain))
            self._exclusion_key = key
        return self._exclusion_cache


def matches(pattern: str, relative: str) -> bool:
    """Glob match of a root-relative path: the whole path, any trailing part, or any directory."""
    path = PurePosixPath(relative)
    pattern = pattern.rstrip("/")
    if "/" not in pattern:
        return any(fnmatch.fnmatchcase(part, pattern) for part in path.parts)
    pattern = pattern.lstrip("./")
    if fnmatch.fnmatchcase(str(path), pattern) or fnmatch.fnmatchcase(str(path), pattern + "/*"):
        return True
    return pattern.startswith("**/") and any(
        fnmatch.fnmatchcase("/".join(path.parts[i:]), pattern[3:]) for i in range(len(path.parts))
    )


def expand(selectors: list[str]) -> set[str]:
    codes = list(catalog.load())
    chosen: set[str] = set()
    for selector in selectors:
        sel = selector.strip().upper()
        if not sel:
            continue
        if sel == "ALL":
            chosen.update(codes)
            continue
        hits = [c for c in codes if c.startswith(sel)]
        if not hits:
            raise ConfigError(f"unknown rule selector `{selector}` (see `devlint rules`)")
        chosen.update(hits)
    return chosen


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.devlint] table, from `start` upwards."""
    start = start.resolve()
    for directory in (start, *start.parents) if start.is_dir() else start.parents:
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if "devlint" not in text:  # no [tool.devlint] table, nor an error to report in one
                continue
            tomllib = catalog.toml()
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                if "tool.devlint" in text:
                    raise ConfigError(f"{candidate}: invalid TOML: {exc}") from exc
                continue
            if "devlint" in data.get("tool", {}):
                return candidate
    return None


def _list(table: dict, key: str, where: Path) -> list[str] | None:
    value = table.get(key, table.get(key.replace("-", "_")))
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of strings")
    return value


def load(config_path: Path | None, root: Path) -> Settings:
    if config_path is None:
        return Settings(root=root.resolve())
    tomllib = catalog.toml()
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {config_path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: invalid TOML: {exc}") from exc
    table = data.get("tool", {}).get("devlint", {}) if config_path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise ConfigError(f"{config_path}: [tool.devlint] must be a table")
    unknown = {k.replace("_", "-") for k in table} - _KEYS
    if unknown:
        raise ConfigError(f"{config_path}: unknown option(s) in [tool.devlint]: {', '.join(sorted(unknown))}")
    settings = Settings(root=config_path.parent.resolve(), config_path=config_path)
    for key, attr in (("select", "select"), ("extend-select", "extend_select"), ("ignore", "ignore"),
                      ("exclude", "exclude"), ("extend-exclude", "extend_exclude"), ("device", "device")):
        value = _list(table, key, config_path)
        if value is not None:
            setattr(settings, attr, value)
    pfi = table.get("per-file-ignores", table.get("per_file_ignores", {}))
    if not isinstance(pfi, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in pfi.values()
    ):
        raise ConfigError(f"{config_path}: `per-file-ignores` must map globs to lists of codes")
    settings.per_file_ignores = pfi
    gitignore = table.get("respect-gitignore", table.get("respect_gitignore", True))
    if not isinstance(gitignore, bool):
        raise ConfigError(f"{config_path}: `respect-gitignore` must be true or false")
    settings.respect_gitignore = gitignore
    report = table.get("runtime-report", table.get("runtime_report"))
    if report is not None:
        if not isinstance(report, str) or not report.strip():
            raise ConfigError(f"{config_path}: `runtime-report` must be a path (a string)")
        settings.runtime_report = settings.root / report
    python = table.get("python")
    if python is not None:
        if not isinstance(python, str) or not python.strip():
            raise ConfigError(f"{config_path}: `python` must be the path of an interpreter or environment (a string)")
        settings.python = python
    libraries = table.get("libraries", "installed")
    if libraries not in LIBRARY_MODES:
        raise ConfigError(f"{config_path}: `libraries` must be one of {', '.join(map(repr, LIBRARY_MODES))}")
    settings.libraries = libraries
    # Validate selectors now, so a typo is an error even for rules that never fire.
    settings.enabled()
    for codes in pfi.values():
        expand(codes)
    return settings
