"""How `devlint check` grows with its input: time and peak memory per size, and the log-log slope.

    python benchmarks/scale.py [--quick] [--dimension lines|files|functions]... [--format text]

Three dimensions, each a series of generated projects of growing size, checked with
`devlint check --no-cache` in a fresh process:

  lines      one file, a finding on every line (`x7 = torch.zeros(7).cuda()`): 2.5k .. 200k lines
  functions  one file of ten-line functions, a finding on every line of each: 2.5k .. 200k lines
             (each finding asks for a threaded fix, so the project-wide stages run too)
  files      many files of 200 such lines: 25 .. 800 files (5k .. 160k lines)

Each row gives wall time, CPU time (user + system of devlint and its workers: the figure to
compare on a shared machine), peak resident memory (the largest of devlint's processes, from
wait4), and the slope of log(time) over log(size) between the smallest and the largest size
measured: 1.0 is linear, 2.0 quadratic. Fixed start-up cost lowers a slope measured over small
sizes, so the slope is also given over the upper half of the sizes. `--quick` runs small sizes
(a test runs it); the exit status is 1 when a slope over the upper half exceeds `--max-slope`.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "lines": [2_500, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000],
    "functions": [2_500, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000],
    "files": [25, 50, 100, 200, 400, 800],
}
QUICK = {"lines": [500, 1_000, 2_000, 4_000], "functions": [500, 1_000, 2_000, 4_000], "files": [5, 10, 20, 40]}
LINES_PER_FILE = 200
UNIT = {"lines": "lines", "functions": "lines", "files": "files"}


def _module(lines: int) -> str:
    return "import torch\n" + "".join(f"x{i} = torch.zeros({i}).cuda()\n" for i in range(lines - 1))


def _functions(lines: int, prefix: str = "f") -> str:
    out = ["import torch\n"]
    for i in range((lines - 1) // 10):
        out.append(f"\n\ndef {prefix}{i}(n):\n" if i else f"\ndef {prefix}{i}(n):\n")
        out.extend(f"    x{k} = torch.zeros(n + {k}).cuda()\n" for k in range(8))
    return "".join(out)


def generate(dimension: str, size: int, root: Path) -> None:
    if dimension == "lines":
        (root / "generated.py").write_text(_module(size))
    elif dimension == "functions":
        (root / "generated.py").write_text(_functions(size))
    else:
        for n in range(size):
            (root / f"module{n}.py").write_text(_functions(LINES_PER_FILE, prefix=f"m{n}_f"))


def measure(root: Path, output_format: str, jobs: int | None) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak resident MB and exit status of one cold check of `root`."""
    command = [sys.executable, "-m", "devlint", "check", ".", "--no-cache", "--output-format", output_format]
    if jobs:
        command += ["-j", str(jobs)]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode not in (0, 1):
        sys.exit(f"devlint failed (exit {process.returncode}) on {root}:\n{error}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(time) over log(size)."""
    xs = [math.log(size) for size, _ in points]
    ys = [math.log(max(seconds, 1e-3)) for _, seconds in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def run_dimension(dimension: str, sizes: list[int], output_format: str, jobs: int | None) -> list[tuple]:
    rows = []
    print(f"\n{dimension}: {'size':>9} {'wall s':>8} {'CPU s':>8} {'peak MB':>8}", flush=True)
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="devlint-scale-") as tmp:
            root = Path(tmp)
            (root / "pyproject.toml").write_text("[tool.devlint]\n")
            generate(dimension, size, root)
            wall, cpu, peak, _ = measure(root, output_format, jobs)
        rows.append((size, wall, cpu, peak))
        print(f"{'':{len(dimension) + 1}} {size:>9,} {wall:>8.2f} {cpu:>8.2f} {peak:>8.0f}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a test")
    parser.add_argument("--dimension", action="append", choices=sorted(SIZES), help="default: all three")
    parser.add_argument("--format", default="text", help="devlint's --output-format (default text)")
    parser.add_argument("-j", "--jobs", type=int, help="devlint's -j (default: its own)")
    parser.add_argument("--max-slope", type=float, default=1.1)
    parser.add_argument("--max-size", type=int, help="leave out sizes above this")
    args = parser.parse_args()
    table = QUICK if args.quick else SIZES
    summary, worst = [], 0.0
    for dimension in args.dimension or ["lines", "functions", "files"]:
        sizes = [s for s in table[dimension] if args.max_size is None or s <= args.max_size]
        rows = run_dimension(dimension, sizes, args.format, args.jobs)
        upper = rows[len(rows) // 2 - (len(rows) % 2 == 0):] if len(rows) > 2 else rows
        whole = slope([(r[0], r[1]) for r in rows]), slope([(r[0], r[2]) for r in rows])
        high = slope([(r[0], r[1]) for r in upper]), slope([(r[0], r[2]) for r in upper])
        worst = max(worst, high[1])
        summary.append(
            f"{dimension}: slope {whole[0]:.2f} wall / {whole[1]:.2f} CPU over {rows[0][0]:,}..{rows[-1][0]:,} {UNIT[dimension]}; "
            f"{high[0]:.2f} / {high[1]:.2f} over {upper[0][0]:,}..{rows[-1][0]:,}; peak {max(r[3] for r in rows):.0f} MB"
        )
    print()
    print("\n".join(summary))
    return 1 if worst > args.max_slope else 0


if __name__ == "__main__":
    sys.exit(main())
