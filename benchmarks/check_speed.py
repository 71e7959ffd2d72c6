"""Time `devlint check` against ruff (and TorchFix) on torch's own sources.

Builds the corpus of issue 8 from the installed torch package (torch/nn, torch/optim,
torch/utils: ~318 files, ~110k lines), then times, side by side on this machine:

  devlint cold   (--no-cache)             ruff cold   (--no-cache --select ALL)
  devlint warm   (nothing changed)        ruff warm   (its cache, --select ALL)
  devlint after one file changed          TorchFix    (once; it is slow)

and prints medians, ratios and devlint's peak memory.

    python benchmarks/check_speed.py [--runs 5] [--ruff PATH] [--torchfix PATH]
    python benchmarks/check_speed.py --paired 5 [--baseline CHECKOUT] [-j N]

`--paired N` is the comparison for a shared, noisy machine: N rounds, each running in turn
ruff cold, devlint cold, devlint warm, devlint after a line is appended to one file (and the
same three for the devlint of another checkout
given by `--baseline`, e.g. a `git worktree` of the commit before a change, which goes first
every other round so that neither gains from its place), each timed in
wall and CPU seconds (user + system of the process and its workers). Medians and the ratios
to ruff's cold run are printed; `-j 1` makes CPU time the whole story.

torch is only located, not imported. ruff and TorchFix are optional.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUBTREES = ("nn", "optim", "utils")
EDITED = "nn/modules/linear.py"  # the file --paired appends a line to


def build_corpus(target: Path) -> tuple[int, int]:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed: it supplies the corpus (pip install torch)")
    torch_dir = Path(list(spec.submodule_search_locations)[0])
    for sub in SUBTREES:
        shutil.copytree(torch_dir / sub, target / sub, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
    files = list(target.rglob("*.py"))
    return len(files), sum(p.read_text(errors="replace").count("\n") for p in files)


# devlint runs as installed, with its bytecode written (pip compiles it at install time): an
# environment with PYTHONDONTWRITEBYTECODE would otherwise compile it from source every run.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=_ENV)
    return time.perf_counter() - start


def median_of(runs: int, cmd: list[str], cwd: Path, before=None) -> float:
    times = []
    for i in range(runs):
        if before:
            before(i)
        times.append(timed(cmd, cwd))
    return statistics.median(times)


def timed_cpu(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (the process and the workers it waited for) of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or _ENV)
    _, _, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def paired(rounds: int, ruff: str, baseline: Path | None, jobs: int | None) -> None:
    with tempfile.TemporaryDirectory(prefix="devlint-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        n_files, n_lines = build_corpus(corpus)
        devlint = [sys.executable, "-m", "devlint", "check", ".", "--exit-zero", "-q"] + (["-j", str(jobs)] if jobs else [])
        here = {**_ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        variants = {"devlint": here}
        if baseline is not None:
            variants["baseline"] = {**_ENV, "PYTHONPATH": str(baseline.resolve())}
        trees = {name: corpus if name == "devlint" else shutil.copytree(corpus, Path(tmp) / name) for name in variants}  # a cache each
        runs: dict[str, list[tuple[float, float]]] = {}
        for name, env in variants.items():  # once untimed: bytecode written, cache filled
            timed_cpu(devlint, trees[name], env)
        for name in variants:  # the table's order, whichever runs first
            runs[f"{name} cold"], runs[f"{name} warm"], runs[f"{name} edited"] = [], [], []
        for round_ in range(rounds):
            runs.setdefault("ruff cold", []).append(timed_cpu([ruff, "check", ".", "--select", "ALL", "--exit-zero", "-q", "--no-cache"], corpus))
            # Every other round the baseline goes first: the checkout measured right after ruff
            # read up to 4% slower in round 6's A/B runs, whichever code it held.
            order = list(variants.items())
            for name, env in order[::-1] if round_ % 2 else order:
                runs[f"{name} cold"].append(timed_cpu(devlint + ["--no-cache"], trees[name], env))
                runs[f"{name} warm"].append(timed_cpu(devlint, trees[name], env))
                with open(trees[name] / EDITED, "a") as edited:  # one file changed: it and what depends on it
                    edited.write(f"# edited in round {round_}\n")
                runs[f"{name} edited"].append(timed_cpu(devlint, trees[name], env))
        print(f"corpus: torch/{{{','.join(SUBTREES)}}}: {n_files} files, {n_lines} lines; {os.cpu_count()} cores; {rounds} rounds, interleaved, order alternating")
        ruff_wall = statistics.median(w for w, _ in runs["ruff cold"])
        ruff_cpu = statistics.median(c for _, c in runs["ruff cold"])
        for name, times in runs.items():
            wall, cpu = statistics.median(w for w, _ in times), statistics.median(c for _, c in times)
            print(f"  {name:<14} wall {wall:7.3f} s ({wall / ruff_wall:5.2f}x ruff cold)   CPU {cpu:7.3f} s ({cpu / ruff_cpu:5.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ruff", default=shutil.which("ruff"))
    parser.add_argument("--torchfix", default=shutil.which("torchfix"))
    parser.add_argument("--paired", type=int, metavar="ROUNDS", help="interleaved rounds against ruff cold, wall and CPU")
    parser.add_argument("--baseline", type=Path, help="with --paired: another checkout's devlint, timed in the same rounds")
    parser.add_argument("-j", "--jobs", type=int, help="with --paired: devlint's -j")
    args = parser.parse_args()
    if args.paired:
        if not args.ruff:
            sys.exit("--paired needs ruff (pip install ruff, or --ruff PATH)")
        paired(args.paired, args.ruff, args.baseline, args.jobs)
        return

    with tempfile.TemporaryDirectory(prefix="devlint-bench-") as tmp:
        corpus = Path(tmp)
        n_files, n_lines = build_corpus(corpus)
        devlint = [sys.executable, "-m", "devlint", "check", ".", "--exit-zero", "-q"]
        rows: list[tuple[str, float]] = []

        timed(devlint + ["--no-cache"], corpus)  # once untimed: writes the bytecode
        rows.append(("devlint cold", median_of(args.runs, devlint + ["--no-cache"], corpus)))
        timed(devlint, corpus)  # populate the cache
        rows.append(("devlint warm", median_of(args.runs, devlint, corpus)))
        files = sorted(corpus.rglob("*.py"))

        def touch_one(i: int) -> None:
            path = files[(i * 37) % len(files)]
            path.write_text(path.read_text() + f"\n# edited {i}\n")

        rows.append(("devlint one file changed", median_of(args.runs, devlint, corpus, before=touch_one)))
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

        if args.ruff:
            ruff = [args.ruff, "check", ".", "--select", "ALL", "--exit-zero", "-q"]
            rows.append(("ruff cold (--select ALL)", median_of(args.runs, ruff + ["--no-cache"], corpus)))
            timed(ruff, corpus)
            rows.append(("ruff warm (--select ALL)", median_of(args.runs, ruff, corpus)))
        if args.torchfix:
            rows.append(("TorchFix (one run)", timed([args.torchfix, "."], corpus)))

    times = dict(rows)
    print(f"corpus: torch/{{{','.join(SUBTREES)}}}: {n_files} files, {n_lines} lines; {os.cpu_count()} cores")
    for name, seconds in rows:
        print(f"  {name:<28} {seconds:8.3f} s")
    print(f"  devlint peak memory (max RSS of one process): {peak_kib / 1024:.0f} MiB")
    if "ruff cold (--select ALL)" in times:
        print(f"  cold: devlint / ruff = {times['devlint cold'] / times['ruff cold (--select ALL)']:.2f}x (target <= 4x)")
        print(f"  warm: devlint / ruff = {times['devlint warm'] / times['ruff warm (--select ALL)']:.2f}x (target <= 1x)")
    if "TorchFix (one run)" in times:
        print(f"  TorchFix / devlint cold = {times['TorchFix (one run)'] / times['devlint cold']:.0f}x (target >= 25x)")
    print(f"  one changed file: {times['devlint one file changed']:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
