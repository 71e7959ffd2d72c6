"""Is a cached `devlint check` exactly a cold one, edit after edit, on a real repository?

On a copy of REPO, makes N random one-line edits (delete a line, duplicate one, or rename
one `device` to `dev1ce`), and after each compares `devlint check --output-format json`
with the cache, run twice (the stages with the result cache, then the last run replayed:
check/replay.py), against `--no-cache`. Prints every difference, and the count.

    python benchmarks/cache_exactness.py REPO [--edits 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def check(root: Path, *extra: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "devlint", "check", ".", "--output-format", "json", *extra],
        cwd=root, capture_output=True, text=True, check=False,
    ).stdout
    return [json.dumps(f, sort_keys=True) for f in json.loads(out or "[]")]


def edit(path: Path, rng: random.Random) -> str | None:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    if not lines:
        return None
    kind = rng.choice(["delete", "duplicate", "rename device"])
    row = rng.randrange(len(lines))
    if kind == "delete":
        del lines[row]
    elif kind == "duplicate":
        lines.insert(row, lines[row])
    else:
        rows = [i for i, line in enumerate(lines) if "device" in line]
        if not rows:
            return None
        row = rng.choice(rows)
        lines[row] = lines[row].replace("device", "dev1ce", 1)
    path.write_text("".join(lines), encoding="utf-8")
    return f"{kind} line {row + 1}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", type=Path)
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="devlint-cache-") as tmp:
        root = Path(tmp) / args.repo.name
        shutil.copytree(args.repo, root, ignore=shutil.ignore_patterns(".git", ".devlint_cache"))
        files = sorted(root.rglob("*.py"))
        check(root)  # fill the cache
        differences = 0
        for _ in range(args.edits):
            path = rng.choice(files)
            what = edit(path, rng)
            if what is None:
                continue
            cached, replayed, cold = check(root), check(root), check(root, "--no-cache")
            for name, output in (("cached", cached), ("replayed", replayed)):
                if output != cold:
                    differences += 1
                    print(f"after {what} of {path.relative_to(root)} ({name}):")
                    for line in difflib.unified_diff(cold, output, "--no-cache", name, n=0, lineterm=""):
                        print("  " + line[:400])
    print(f"{args.repo.name}: {args.edits} edits, {differences} cached or replayed outputs unlike --no-cache")


if __name__ == "__main__":
    main()
