"""Which files `devlint check PATHS` looks at.

Directories are walked without following symbolic links (no loops), skipping hidden
directories, the usual virtualenv and build directories and the configured
`exclude` globs. Inside a git work tree, git itself says which files are ignored
(`git ls-files --others --exclude-standard`), so .gitignore means exactly what it
means to git. Files named on the command line are always checked, unless
`--force-exclude` is given and they are excluded (pre-commit passes every staged file).
"""

from __future__ import annotations

import operator
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from devlint.config import Settings

SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")
# YAML configs that may build the project's classes (static/configs.py): read, never checked.
CONFIG_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    display: str  # as shown to the user: relative to the working directory when below it
    module: str  # dotted module name relative to the project root


def _under(path: str, directory: str) -> str | None:
    """`path` relative to `directory` (both absolute and normalised), "/"-separated, or None
    when it is not below it. Paths as strings: pathlib's relative_to and resolve were a
    quarter of a warm run on torch's 318 files."""
    if path == directory:
        return "."
    prefix = directory if directory.endswith(os.sep) else directory + os.sep
    if not path.startswith(prefix):
        return None
    rel = path[len(prefix):]
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


def _suffix(name: str) -> str:
    """A file name's suffix, as pathlib's `suffix` (a leading or trailing dot is none)."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _strip_suffix(name: str) -> str:
    return name[: len(name) - len(_suffix(name))]


def _module_name(path: str, root: str) -> str:
    rel = _under(path, root)
    parts = rel.split("/") if rel is not None and rel != "." else []
    if parts:
        parts[-1] = _strip_suffix(parts[-1])
    else:
        parts = [_strip_suffix(os.path.basename(path))]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(p for p in parts if p.isidentifier())


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of `path` relative to `root` (its stem when outside it)."""
    return _module_name(os.fspath(path), os.fspath(root))


def _may_be_in_git(directory: str) -> bool:
    """Could git find a repository for `directory`? It looks for `.git` there and in every
    directory above (from the real path, as its working directory gives it), unless GIT_DIR
    names one. Outside a repository git is not started (its process was a tenth of a run
    replayed from its record)."""
    if "GIT_DIR" in os.environ:
        return True
    current = os.path.realpath(directory)
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return True
        parent = os.path.dirname(current)
        if parent == current:
            return False
        current = parent


def _git_files(directory: str) -> list[str] | None:
    """Files git does not ignore under `directory`, or None outside a git work tree."""
    if not _may_be_in_git(directory):
        return None
    import subprocess

    try:
        out = subprocess.run(
            ["git", "-C", directory, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    files = []
    for raw in out.stdout.split(b"\0"):
        if not raw:
            continue
        rel = os.fsdecode(raw)
        candidate = os.path.join(directory, rel)
        if rel.endswith("/") or os.path.isdir(candidate):  # a nested repository or submodule
            files.extend(_walk(candidate, set()))
        else:
            files.append(candidate)
    return files


def _hidden(name: str) -> bool:
    return name.startswith(".") and name not in (".", "..")


def _walk(directory: str, seen: set[tuple[int, int]]) -> list[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False, onerror=lambda e: None):
        try:
            st = os.stat(dirpath)
            key = (st.st_dev, st.st_ino)
        except OSError:
            continue
        if key in seen:
            dirnames.clear()
            continue
        seen.add(key)
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        files.extend(os.path.join(dirpath, f) for f in sorted(filenames))
    return files


@dataclass(frozen=True)
class Discovered:
    files: list[SourceFile]  # to check
    configs: list[SourceFile]  # YAML found beside them in the directories walked
    missing: list[str]  # a message for each path that does not exist


def discover(paths: list[Path], settings: Settings, force_exclude: bool = False) -> tuple[list[SourceFile], list[str]]:
    """The files to check, and messages for paths that do not exist."""
    found = find(paths, settings, force_exclude)
    return found.files, found.missing


def find(paths: list[Path], settings: Settings, force_exclude: bool = False) -> Discovered:
    """The files to check, the configs beside them, and messages for paths that do not exist.
    Configs are found only by walking a directory, under the same exclusions as the files."""
    cwd = os.path.realpath(os.getcwd())
    root = os.path.abspath(settings.root)
    missing: list[str] = []
    found: dict[str, SourceFile] = {}
    configs: dict[str, SourceFile] = {}
    real_dirs: dict[str, str] = {}

    def identity(absolute: str) -> str | None:
        """A walked file's real path (one file reached twice through links is checked once),
        or None when it is not a regular file. The directory's real path is worked out once."""
        try:
            st = os.lstat(absolute)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return os.path.realpath(absolute) if os.path.isfile(absolute) else None
        if not stat.S_ISREG(st.st_mode):
            return None
        parent, name = os.path.split(absolute)
        real = real_dirs.get(parent)
        if real is None:
            real = real_dirs[parent] = os.path.realpath(parent)
        return os.path.join(real, name)

    def add(path: str | Path, base: str | None) -> None:
        """Add a file; `base` is the directory being walked, None for a file named explicitly."""
        absolute = os.path.abspath(path)
        below_root = _under(absolute, root) is not None
        home = root if below_root else (base or os.path.dirname(absolute))
        rel = _under(absolute, home) or os.path.basename(absolute)
        held = found
        if base is not None:
            suffix = _suffix(os.path.basename(absolute))
            if suffix in CONFIG_SUFFIXES:
                held = configs
            elif suffix not in SOURCE_SUFFIXES:
                return
            inner = _under(absolute, base) or os.path.basename(absolute)
            if settings.is_excluded(rel) or any(_hidden(p) for p in inner.split("/")[:-1]):
                return
            key = identity(absolute)
            if key is None:
                return
        else:
            if force_exclude and settings.is_excluded(rel):
                return
            try:
                key = str(Path(absolute).resolve())
            except (OSError, RuntimeError):  # a symlink loop
                key = absolute
        if key not in held:
            display = _under(absolute, cwd)
            held[key] = SourceFile(Path(absolute), display if display is not None else absolute, _module_name(absolute, home))

    for given in paths:
        if not os.path.lexists(given):
            missing.append(f"{given}: no such file or directory")
            continue
        if not given.is_dir():
            add(given, None)
            continue
        directory = os.path.abspath(given)
        if force_exclude and settings.is_excluded(_under(directory, root) or os.path.basename(directory)):
            continue
        listed = _git_files(directory) if settings.respect_gitignore else None
        for path in listed if listed is not None else _walk(directory, set()):
            add(path, directory)
    by_display = operator.attrgetter("display")
    return Discovered(sorted(found.values(), key=by_display), sorted(configs.values(), key=by_display), missing)
