"""Which files `devlint check PATHS` looks at.

Directories are walked without following symbolic links (no loops), skipping hidden
directories, the usual virtualenv and build directories and the configured
`exclude` globs. Inside a git work tree, git itself says which files are ignored
(`git ls-files --others --exclude-standard`), so .gitignore means exactly what it
means to git. Files named on the command line are always checked, unless
`--force-exclude` is given and they are excluded (pre-commit passes every staged file).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devlint.config import Settings

SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    display: str  # as shown to the user: relative to the working directory when below it
    module: str  # dotted module name relative to the project root


def _display(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def module_name(path: Path, root: Path) -> str:
    try:
        parts = list(path.relative_to(root).with_suffix("").parts)
    except ValueError:
        parts = [path.stem]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(p for p in parts if p.isidentifier())


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _below(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _git_files(directory: Path) -> list[Path] | None:
    """Files git does not ignore under `directory`, or None outside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
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
        candidate = directory / rel
        if rel.endswith("/") or candidate.is_dir():  # a nested repository or submodule
            files.extend(_walk(candidate, set()))
        else:
            files.append(candidate)
    return files


def _hidden(name: str) -> bool:
    return name.startswith(".") and name not in (".", "..")


def _walk(directory: Path, seen: set[tuple[int, int]]) -> list[Path]:
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
        files.extend(Path(dirpath) / f for f in sorted(filenames))
    return files


def discover(paths: list[Path], settings: Settings, force_exclude: bool = False) -> tuple[list[SourceFile], list[str]]:
    """The files to check, and messages for paths that do not exist."""
    cwd = Path.cwd().resolve()
    root = settings.root
    missing: list[str] = []
    found: dict[Path, SourceFile] = {}

    def add(path: Path, base: Path | None) -> None:
        """Add a file; `base` is the directory being walked, None for a file named explicitly."""
        absolute = Path(os.path.abspath(path))
        rel = _relative(absolute, root if _below(absolute, root) else (base or absolute.parent))
        if base is not None:
            if absolute.suffix not in SOURCE_SUFFIXES or not absolute.is_file():
                return
            inner = _relative(absolute, base)
            if settings.is_excluded(rel) or any(_hidden(p) for p in Path(inner).parts[:-1]):
                return
        elif force_exclude and settings.is_excluded(rel):
            return
        try:
            key = absolute.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            key = absolute
        if key not in found:
            found[key] = SourceFile(absolute, _display(absolute, cwd), module_name(absolute, root if _below(absolute, root) else (base or absolute.parent)))

    for given in paths:
        if not os.path.lexists(given):
            missing.append(f"{given}: no such file or directory")
            continue
        if not given.is_dir():
            add(given, None)
            continue
        directory = Path(os.path.abspath(given))
        if force_exclude and settings.is_excluded(_relative(directory, root)):
            continue
        listed = _git_files(directory) if settings.respect_gitignore else None
        for path in listed if listed is not None else _walk(directory, set()):
            add(path, directory)
    return sorted(found.values(), key=lambda f: f.display), missing
