"""`devlint check --fix --unsafe-fixes` on a copy of a real repository: the findings
before and after, the files the fixes changed, whether every file still compiles, and
whether a second run changes anything.

    python benchmarks/fix_roundtrip.py PATH/TO/REPO [--path SUBPATH]... [--keep DIR]

`--path` names the part of the program that matters (its inference path): the findings
left there are listed one by one. `--keep DIR` leaves the fixed copy in DIR (for running
it). The repository is copied first; the original is not touched.
"""

from __future__ import annotations

import argparse
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


def _fix(tree: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "devlint", "check", ".", "--fix", "--unsafe-fixes", "--no-cache"],
        cwd=tree, capture_output=True, text=True, check=False,
    )
    return done.stdout


def _digests(tree: Path) -> dict[str, str]:
    return {
        str(path.relative_to(tree)): hashlib.blake2b(path.read_bytes()).hexdigest()
        for path in sorted(tree.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and ".devlint_cache" not in path.parts
    }


def _relative(finding: dict, tree: Path) -> str:
    return str(Path(finding["filename"]).resolve().relative_to(tree.resolve()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--path", action="append", default=[], help="a file or directory of the inference path")
    parser.add_argument("--keep", type=Path, help="leave the fixed copy here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "repo"
        shutil.copytree(args.repo, tree, ignore=shutil.ignore_patterns(".git", "__pycache__", ".devlint_cache"))
        before = _findings(tree)
        original = _digests(tree)
        _fix(tree)
        fixed = _digests(tree)
        after = _findings(tree)
        broken = []
        warnings.simplefilter("ignore", SyntaxWarning)  # the repository's own style warnings
        for path in tree.rglob("*.py"):
            try:
                py_compile.compile(str(path), doraise=True, cfile=str(Path(tmp) / "x.pyc"))
            except py_compile.PyCompileError:
                broken.append(str(path.relative_to(tree)))
        _fix(tree)
        twice = _digests(tree)
        changed = sorted(name for name, digest in fixed.items() if original.get(name) != digest)
        left = [f for f in after if any(_relative(f, tree) == p or _relative(f, tree).startswith(p.rstrip("/") + "/") for p in args.path)]
        if args.keep:
            shutil.copytree(tree, args.keep, dirs_exist_ok=True)
    removed = len(before) - len(after)
    print(f"findings before: {len(before)}, after --fix --unsafe-fixes: {len(after)} ({removed} removed, {100 * removed / max(len(before), 1):.0f}%)")
    print(f"files changed: {len(changed)}")
    for name in changed:
        print(f"  {name}")
    print(f"files that no longer compile: {len(broken)} {broken if broken else ''}")
    print(f"second --fix changed something: {fixed != twice}")
    if args.path:
        print(f"findings left in the inference path ({', '.join(args.path)}): {len(left)}")
        for f in left:
            fix = f["fix"]["message"] if f["fix"] else ""
            print(f"  {_relative(f, tree)}:{f['location']['row']} {f['code']} {f['message']}\n    fix: {fix}")
    return 1 if broken or fixed != twice else 0


if __name__ == "__main__":
    sys.exit(main())
