"""Small helpers shared by the runtime tests."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def next_line() -> int:
    """The line after the caller's: where the call under test is."""
    return sys._getframe(1).f_lineno + 1


def sites(leaks) -> list[tuple[str, int]]:
    return sorted((leak.code, leak.line) for leak in leaks)


def repo_environment(**extra) -> dict:
    """The environment for a child Python that imports this checkout of devlint, with no GPU."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), CUDA_VISIBLE_DEVICES="")
    environment.update(extra)
    return environment
