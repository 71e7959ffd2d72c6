"""Which Python environment devlint lints for, and where its libraries live.

As pyright and mypy do: an interpreter named with `--python PATH` (or `python = "..."` in
`[tool.devlint]`), else the virtual environment in `VIRTUAL_ENV`, else the interpreter
devlint itself runs in. PATH may be the interpreter or the environment's directory.

The site-packages directories are found from the layout where the layout says it all: a
virtual environment (it has a `pyvenv.cfg`) keeps them under `lib/python3.X/` (`Lib/` on
Windows), so nothing is run. Only an interpreter that is not a virtual environment (a
system or conda Python), or one that also sees its base's packages
(`include-system-site-packages = true`), is asked for its `sys.path` with a one-line
`-I -c` program that imports only `sys` and `json`: isolated mode keeps the project's
directory and PYTHON* variables out of it, so no file of the project and no library is
imported. Library source is then read as text; it is never imported.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

_ASK_SYS_PATH = "import json, sys; print(json.dumps(sys.path))"


class EnvironmentNotFound(Exception):
    """The configured interpreter cannot be used: reported in one line, exit code 2."""


@dataclass(frozen=True)
class Environment:
    python: str  # the interpreter, as named (a venv's bin/python is not resolved: it is a symlink)
    site_dirs: tuple[str, ...]  # where its third-party packages are, in import order
    chosen_by: str  # "--python", "config", "VIRTUAL_ENV" or "running interpreter"


def find(python: str | None = None, chosen_by: str = "--python", base: Path | None = None) -> Environment:
    """The environment to read libraries from. `python` (relative to `base`) wins over
    VIRTUAL_ENV, which wins over the running interpreter."""
    if python:
        path = Path(python).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        return _of_path(Path(os.path.abspath(path)), chosen_by)
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and Path(venv, "pyvenv.cfg").is_file() and not _same_prefix(Path(venv), Path(sys.prefix)):
        return _of_path(Path(venv), "VIRTUAL_ENV")
    # sys.path[0] is the script's directory or the working directory: the invocation's,
    # not the environment's (the checked project itself, under `python -m devlint`).
    dirs = tuple(p for p in sys.path[1:] if p and os.path.isdir(p))
    return Environment(sys.executable, dirs, "running interpreter")


def _same_prefix(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _of_path(path: Path, chosen_by: str) -> Environment:
    if path.is_dir():  # the environment's directory
        prefix = path
        python = next((str(p) for p in (path / "bin" / "python", path / "Scripts" / "python.exe") if p.exists()), str(path))
    elif path.exists():
        python = str(path)
        prefix = path.parent.parent  # <prefix>/bin/python, <prefix>/Scripts/python.exe
    else:
        raise EnvironmentNotFound(f"python interpreter not found: {path} (from {chosen_by})")
    config = _pyvenv_cfg(prefix)
    if config is not None:
        dirs = _venv_site_dirs(prefix)
        if config.get("include-system-site-packages", "false").lower() != "true":
            return Environment(python, dirs, chosen_by)
        return Environment(python, _unique(dirs + _ask(python, chosen_by)), chosen_by)
    if not path.is_file():
        raise EnvironmentNotFound(f"{path} is neither a Python interpreter nor a virtual environment (from {chosen_by})")
    return Environment(python, _ask(python, chosen_by), chosen_by)


def _pyvenv_cfg(prefix: Path) -> dict[str, str] | None:
    try:
        text = (prefix / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip().lower(): value.strip() for key, sep, value in pairs if sep}


def _venv_site_dirs(prefix: Path) -> tuple[str, ...]:
    """site-packages of a virtual environment, newest Python first when there are several."""
    found = sorted(prefix.glob("lib/python3*/site-packages"), key=_python_version, reverse=True)
    found += [p for p in (prefix / "Lib" / "site-packages",) if p.is_dir()]
    return tuple(str(p) for p in found if p.is_dir())


def _python_version(site: Path) -> tuple[int, ...]:
    digits = site.parent.name.removeprefix("python").split(".")
    return tuple(int(d) for d in digits if d.isdigit())


def _ask(python: str, chosen_by: str) -> tuple[str, ...]:
    """The interpreter's own sys.path, asked in isolated mode (see the module docstring)."""
    import subprocess

    try:
        done = subprocess.run(
            [python, "-I", "-c", _ASK_SYS_PATH], capture_output=True, text=True, timeout=20, cwd=Path(python).parent
        )
        paths = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        paths = None
    if not isinstance(paths, list):
        raise EnvironmentNotFound(f"cannot ask {python} for its sys.path (from {chosen_by}): is it a Python interpreter?")
    return _unique(tuple(p for p in paths if isinstance(p, str) and p and os.path.isdir(p)))


def _unique(paths) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))
