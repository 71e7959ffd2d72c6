"""`devlint check --fix --unsafe-fixes` on a copy of a real repository: how many findings the
fixes remove, whether every file still compiles, and whether a second run changes anything.

    python benchmarks/fix_roundtrip.py PATH/TO/REPO

The repository is copied to a temporary directory first; the original is not touched.
"""

from __future__ import annotations

import hashlib
import json
import py_compile
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path


def _findings(tree: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "devlint", "check", ".", "--output-format", "json", "--no-cache", "--exit-zero"],
        cwd=tree, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def _fix(tree: Path) -> None:
    subprocess.run([sys.executable, "-m", "devlint", "check", ".", "--fix", "--unsafe-fixes", "--no-cache", "-q"], cwd=tree, capture_output=True, check=False)


def _digest(tree: Path) -> str:
    h = hashlib.blake2b()
    for path in sorted(tree.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(tree)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "repo"
        shutil.copytree(sys.argv[1], tree, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        before = _findings(tree)
        _fix(tree)
        after = _findings(tree)
        broken = []
        warnings.simplefilter("ignore", SyntaxWarning)  # the repository's own style warnings
        for path in tree.rglob("*.py"):
            try:
                py_compile.compile(str(path), doraise=True, cfile=str(Path(tmp) / "x.pyc"))
            except py_compile.PyCompileError:
                broken.append(str(path.relative_to(tree)))
        once = _digest(tree)
        _fix(tree)
        twice = _digest(tree)
    removed = len(before) - len(after)
    print(f"findings before: {len(before)}, after --fix --unsafe-fixes: {len(after)} ({removed} removed, {100 * removed / max(len(before), 1):.0f}%)")
    print(f"files that no longer compile: {len(broken)} {broken if broken else ''}")
    print(f"second --fix changed something: {once != twice}")
    return 1 if broken or once != twice else 0


if __name__ == "__main__":
    sys.exit(main())
