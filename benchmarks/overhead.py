"""What the runtime tracer costs, in its default (cheap) mode and with --thorough.

    python benchmarks/overhead.py --device cuda:0      # from the repository root, on a GPU machine
    python benchmarks/overhead.py --cpu-only

1. Per call, on the CPU, in this process: each call timed plainly, under `devlint.trace()`
   and under `devlint.trace(thorough=True)`, alternating, best of the rounds. An op that
   cannot choose a device (`x + 1`) must cost nothing in the default mode; factories and
   `.to()` pay a wrapper.
2. On the CPU, a program of 50,000 small ops (benchmarks/small_ops.py) run as `python`
   and under `devlint run --device cpu`, in alternating fresh processes, median of the
   rounds; whole-process wall time, startup included. Target: default mode <= 1.05x.
   The two runs must print the same checksum (the tracer changes no result).
3. On a GPU: a convolutional model's inference loop (benchmarks/conv_inference.py,
   ResNet-18-sized) at batch 32 (224x224) and launch-bound at batch 1 (64x64), run as
   `python conv_inference.py` and under `devlint run` (default and --thorough), in
   alternating fresh processes, median ms/iteration. Targets for the default mode
   (issue 25): batch 32 <= +1%, batch 1 <= +5%. Then what the allocator's history costs per op
   (benchmarks/history_cost.py; devlint records it only once a run is known to leak).

Prints PASS/FAIL per target and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import devlint  # noqa: E402

MODES = {"default": [], "thorough": ["--thorough"]}
TARGETS = {"small_ops": 1.05, "batch32": 1.01, "batch1": 1.05}  # default mode, ratio to plain python (issue 25)
PER_CALL_TARGETS = {"x + 1": 0.2, "torch.zeros(16)": 1.5}  # default mode, microseconds added
# Handing work to another thread records the handing-over line (issue 24): it must not show.
HANDOVER_TARGETS = {"pool.submit(f).result()": 1.05, "Thread(target=f).start(); join()": 1.05}  # ratio


def _per_call_microseconds(call, number: int, rounds: int) -> tuple[float, float, float]:
    """(plain, default, thorough): best of `rounds`, alternating, so drift hits all alike."""
    times: dict[str, list[float]] = {"plain": [], "default": [], "thorough": []}
    for _ in range(rounds):
        times["plain"].append(timeit.timeit(call, number=number))
        with devlint.trace(device="cuda:1"):
            times["default"].append(timeit.timeit(call, number=number))
        with devlint.trace(device="cuda:1", thorough=True):
            times["thorough"].append(timeit.timeit(call, number=number))
    return tuple(min(times[key]) / number * 1e6 for key in ("plain", "default", "thorough"))


def cpu_overhead(number: int, rounds: int) -> list[dict]:
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = torch.ones(16)
    calls = {
        "x + 1": lambda: x + 1,
        "torch.relu(x)": lambda: torch.relu(x),
        "torch.zeros(16)": lambda: torch.zeros(16),
        "torch.zeros(16, device='cpu')": lambda: torch.zeros(16, device="cpu"),
        "x.to(torch.float64)": lambda: x.to(torch.float64),
        "x.to('cpu')": lambda: x.to("cpu"),
    }
    rows = [dict(zip(("call", "plain_us", "default_us", "thorough_us"), (name, *_per_call_microseconds(call, number, rounds)))) for name, call in calls.items()]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        handovers = {"pool.submit(f).result()": lambda: pool.submit(int).result(), "Thread(target=f).start(); join()": _start_and_join}
        rows += [dict(zip(("call", "plain_us", "default_us", "thorough_us"), (name, *_per_call_microseconds(call, max(number // 20, 100), rounds)))) for name, call in handovers.items()]
    with FakeTensorMode():  # a leak recorded at a known site, on a fake GPU
        times = _per_call_microseconds(lambda: torch.zeros(16, device="cuda:0"), number // 10, rounds)  # noqa: DL008 - a fake leak, on purpose
    rows.append(dict(zip(("call", "plain_us", "default_us", "thorough_us"), ("torch.zeros(16, device='cuda:0'): a leak, recorded (FakeTensorMode)", *times))))
    return rows


def _start_and_join() -> None:
    thread = threading.Thread(target=int)
    thread.start()
    thread.join()


def _environment() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _prefix(mode: str | None, device: str) -> list[str]:
    """The command line before the script: plain python, or `devlint run` in a mode."""
    if mode is None:
        return [sys.executable]
    return [sys.executable, "-m", "devlint", "run", "--device", device, *MODES[mode]]


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=_environment(), check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def _alternate(rounds: int, measure) -> dict:
    """`measure(mode)` for plain python (None) and each mode, alternating, `rounds` times:
    the median of each, and its ratio to plain python."""
    samples: dict = {None: [], **{mode: [] for mode in MODES}}
    for _ in range(rounds):
        for mode in samples:
            samples[mode].append(measure(mode))
    base = statistics.median(samples[None])
    row = {"plain": base, "rounds": rounds}
    for mode in MODES:
        row[mode] = statistics.median(samples[mode])
        row[f"{mode}_ratio"] = row[mode] / base
    return row


def small_ops(rounds: int) -> dict:
    """Whole-process wall seconds of benchmarks/small_ops.py (and, less sensitive to other
    load on the machine, its CPU seconds); the checksums must agree."""
    script = str(ROOT / "benchmarks" / "small_ops.py")
    outputs, cpu = set(), {}

    def measure(mode):
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        outputs.add(_run([*_prefix(mode, "cpu"), script]))
        wall = time.perf_counter() - start
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.setdefault(mode, []).append(now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime)
        return wall

    row = _alternate(rounds, measure)
    if len(outputs) != 1:
        raise RuntimeError(f"the tracer changed the program's result: {sorted(outputs)}")
    base = statistics.median(cpu[None])
    row["cpu_seconds"] = {mode or "plain": statistics.median(times) for mode, times in cpu.items()}
    row.update({f"{mode}_cpu_ratio": statistics.median(cpu[mode]) / base for mode in MODES})
    return row


def gpu_loop(device: str, rounds: int, workload: list[str]) -> dict:
    script = str(ROOT / "benchmarks" / "conv_inference.py")
    row = _alternate(rounds, lambda mode: json.loads(_run([*_prefix(mode, device), script, "--device", device, *workload]))["ms_per_iteration"])
    return {"workload": " ".join(workload), **row}


def _verdict(name: str, value: float, target: float, unit: str) -> bool:
    passed = value <= target
    print(f"{'PASS' if passed else 'FAIL'}: {name}: {value:{'.3f' if unit == 'x' else '.2f'}}{unit} (target <= {target}{unit})")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU loops")
    parser.add_argument("--device", help="the GPU the loops run on and devlint allows (default: cuda:1 with two GPUs, else cuda:0)")
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per variant for the program runs")
    parser.add_argument("--number", type=int, default=20000, help="calls per timing on the CPU")
    parser.add_argument("--call-rounds", type=int, default=7, help="alternating timings per call on the CPU")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    passed = []
    figures = {"torch": torch.__version__, "cpu": cpu_overhead(args.number, args.call_rounds)}
    print(f"torch {torch.__version__}; per call on the CPU, microseconds (best of {args.call_rounds} alternating rounds of {args.number}):")
    print(f"  {'call':<70} {'plain':>7} {'default':>15} {'thorough':>15}")
    for row in figures["cpu"]:
        plain = row["plain_us"]
        print(f"  {row['call']:<70} {plain:7.2f} {row['default_us']:7.2f} ({row['default_us'] - plain:+5.2f}) {row['thorough_us']:7.2f} ({row['thorough_us'] - plain:+5.2f})")
    for row in figures["cpu"]:
        if row["call"] in PER_CALL_TARGETS:
            passed.append(_verdict(f"default mode adds to {row['call']} (us)", row["default_us"] - row["plain_us"], PER_CALL_TARGETS[row["call"]], " us"))
        if row["call"] in HANDOVER_TARGETS:
            passed.append(_verdict(f"default mode, {row['call']} (recording the handing-over line)", row["default_us"] / row["plain_us"], HANDOVER_TARGETS[row["call"]], "x"))

    figures["small_ops"] = small = small_ops(args.rounds)
    print(f"50,000 small CPU ops, whole process (median of {args.rounds} alternating fresh runs): python {small['plain']:.2f} s, "
          f"devlint run {small['default']:.2f} s ({small['default_ratio']:.3f}x), --thorough {small['thorough']:.2f} s ({small['thorough_ratio']:.3f}x); "
          f"CPU time {small['default_cpu_ratio']:.3f}x and {small['thorough_cpu_ratio']:.3f}x")
    passed.append(_verdict("devlint run --device cpu, 50,000 small ops", small["default_ratio"], TARGETS["small_ops"], "x"))

    count = torch.cuda.device_count()  # NVML-based before CUDA is initialised: this process touches no GPU
    if not args.cpu_only and count > 0:
        device = args.device or ("cuda:1" if count >= 2 else "cuda:0")  # noqa: DL008 - GPU0 only on a one-GPU machine
        loops = {
            "batch32": gpu_loop(device, args.rounds, ["--batch", "32", "--size", "224"]),
            "batch1": gpu_loop(device, args.rounds, ["--batch", "1", "--size", "64", "--iterations", "300"]),
        }
        figures["gpu"] = {"device": device, **loops}
        print(f"GPU inference loop on {device}, ms/iteration (median of {args.rounds} alternating rounds, fresh processes):")
        for name, label in (("batch32", "batch 32 @ 224"), ("batch1", "batch 1 @ 64, launch-bound")):
            row = loops[name]
            print(f"  {label:<28} python {row['plain']:8.3f}   devlint run {row['default']:8.3f} ({100 * (row['default_ratio'] - 1):+6.1f}%)   --thorough {row['thorough']:8.3f} ({100 * (row['thorough_ratio'] - 1):+6.1f}%)")
        for name, label in (("batch32", "batch 32 @ 224"), ("batch1", "batch 1 @ 64")):
            passed.append(_verdict(f"devlint run, {label}, ratio", loops[name]["default_ratio"], TARGETS[name], "x"))
        figures["gpu"]["history"] = history = json.loads(_run([sys.executable, str(ROOT / "benchmarks" / "history_cost.py"), "--device", device]))
        print(f"allocator history (on only after a DL101): x + 1 on {device}: {history['plain_us']:.2f} -> {history['recorded_us']:.2f} us per op")
    elif not args.cpu_only:
        print("no GPU visible: GPU loops skipped")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
