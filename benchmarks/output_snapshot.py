"""Record `devlint check` output on source trees, and compare a later run with it byte for byte.

    python benchmarks/output_snapshot.py record SNAPSHOT_DIR TREE...
    python benchmarks/output_snapshot.py compare SNAPSHOT_DIR TREE...
                                         [--formats text,json] [--diff] [--devlint CHECKOUT]

Speed work must not change what a user sees. `record` runs this checkout's devlint on each
TREE (cwd = the tree, `--no-cache`, so file names are relative to it) in every output format
asked for, and stores stdout, stderr and the exit code; `compare` runs it again and names
every tree and format whose output differs (exit 1), showing the first differing lines.
`--diff` adds `--diff --unsafe-fixes` (the fixes the user would get) to the formats.
`--devlint CHECKOUT` runs the devlint of another checkout (a `git worktree` of the commit
before a change) instead of this one: record with it, compare with this one.

Rules change between commits of other work, so the snapshot is taken before a change and
compared after it, not committed. The trees are typically fixtures/ and the real-code
corpus (one checkout per directory: pass them all, e.g. /work/corpus/*).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(tree: Path, mode: str, checkout: Path) -> dict:
    command = [sys.executable, "-m", "devlint", "check", ".", "--no-cache"]
    command += ["--diff", "--unsafe-fixes"] if mode == "diff" else ["--output-format", mode]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, cwd=tree, capture_output=True, env=env, check=False)
    return {"rc": done.returncode, "stdout": done.stdout.decode("utf-8", "replace"), "stderr": done.stderr.decode("utf-8", "replace")}


def _name(tree: Path, mode: str) -> str:
    return f"{tree.resolve().name}.{mode}.json"


def _outputs(trees: list[Path], modes: list[str], jobs: int, checkout: Path) -> dict[str, dict]:
    pairs = [(tree, mode) for tree in trees for mode in modes]
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda pair: _run(*pair, checkout), pairs))
    return {_name(tree, mode): result for (tree, mode), result in zip(pairs, results)}


def _first_difference(before: str, after: str, limit: int = 12) -> str:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "recorded", "now", lineterm="", n=1)
    return "\n".join(list(lines)[:limit])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("record", "compare"))
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("trees", type=Path, nargs="+")
    parser.add_argument("--formats", default="text,json")
    parser.add_argument("--diff", action="store_true", help="also the output of --diff --unsafe-fixes")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--devlint", type=Path, default=HERE.parent, help="the checkout whose devlint runs (default: this one)")
    args = parser.parse_args()
    missing = [str(t) for t in args.trees if not t.is_dir()]
    if missing:
        print(f"output_snapshot: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    modes = args.formats.split(",") + (["diff"] if args.diff else [])
    outputs = _outputs(args.trees, modes, args.jobs, args.devlint.resolve())
    if args.action == "record":
        args.snapshot.mkdir(parents=True, exist_ok=True)
        for name, result in outputs.items():
            (args.snapshot / name).write_text(json.dumps(result))
        print(f"recorded {len(outputs)} outputs in {args.snapshot}")
        return 0
    differing = 0
    for name, result in outputs.items():
        path = args.snapshot / name
        if not path.exists():
            print(f"{name}: not in the snapshot")
            differing += 1
            continue
        recorded = json.loads(path.read_text())
        for part in ("rc", "stdout", "stderr"):
            if recorded[part] != result[part]:
                differing += 1
                print(f"{name}: {part} differs")
                if part != "rc":
                    print(_first_difference(recorded[part], result[part]))
                else:
                    print(f"  recorded {recorded['rc']}, now {result['rc']}")
    print(f"{len(outputs) - differing} of {len(outputs)} outputs identical" if not differing else f"{differing} differences")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
