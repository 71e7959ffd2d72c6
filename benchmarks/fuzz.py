"""Run the fuzz target of tests/fuzz/ for a while: mutated real files and generated modules
through `devlint check` and `--fix`, until the time is up or something fails.

    python benchmarks/fuzz.py [--minutes 10] [DIR...]

DIR: more seed files (every *.py under it, up to 60 kB each), e.g. a checkout of a real
project; fixtures/ are always seeds. Runs both properties in turns, a few hundred examples
at a time with fresh random seeds, and prints the number of inputs tried. A failure prints
hypothesis's shrunk example and exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=200, help="examples per round of each property")
    parser.add_argument("dirs", nargs="*", type=Path)
    args = parser.parse_args()
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"fuzz: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    os.environ["DEVLINT_FUZZ_SEEDS"] = os.pathsep.join(str(d.resolve()) for d in args.dirs)
    os.environ["DEVLINT_FUZZ_EXAMPLES"] = str(args.batch)
    sys.path.insert(0, str(ROOT / "tests" / "fuzz"))
    import test_fuzz  # noqa: E402  (reads the environment above)

    targets = [test_fuzz.test_mutated_real_files, test_fuzz.test_generated_modules]
    print(f"fuzz: {len(test_fuzz.SEEDS)} seed files, {args.minutes:g} minutes", flush=True)
    end = time.monotonic() + args.minutes * 60
    rounds = 0
    while time.monotonic() < end:
        target = targets[rounds % len(targets)]
        target()  # hypothesis draws fresh random inputs on every call
        rounds += 1
        print(f"fuzz: {test_fuzz.COUNT['inputs']} inputs, no failure ({rounds} rounds)", flush=True)
    print(f"fuzz: done: {test_fuzz.COUNT['inputs']} inputs in {args.minutes:g} minutes, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
