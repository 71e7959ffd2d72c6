"""What the runtime tracer costs.

    python benchmarks/overhead.py            # from the repository root; GPU part when a GPU is visible
    python benchmarks/overhead.py --cpu-only

1. Per intercepted call, on the CPU, in this process: each call timed with and without
   `devlint.trace()`; the difference is the tracer's cost per call. Calls the tracer
   does not judge still pass through its function mode.
2. On a GPU: the wall time of a convolutional model's inference loop
   (benchmarks/conv_inference.py, ResNet-18-sized, batch 32 at 224x224) run as
   `python conv_inference.py` and as `python -m devlint run conv_inference.py`, in
   alternating fresh processes, median of the rounds. Target: ratio <= 1.05. A
   launch-bound configuration (batch 1 at 64x64) is reported too, for information.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import devlint  # noqa: E402

TARGET_RATIO = 1.05


def _per_call_microseconds(call, number: int, rounds: int = 5) -> tuple[float, float]:
    """(without, with the tracer): best of `rounds`, alternating, so drift hits both alike."""
    plain, traced = [], []
    for _ in range(rounds):
        plain.append(timeit.timeit(call, number=number))
        with devlint.trace(device="cuda:1"):
            traced.append(timeit.timeit(call, number=number))
    return min(plain) / number * 1e6, min(traced) / number * 1e6


def cpu_overhead(number: int) -> list[dict]:
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = torch.ones(16)
    calls = {
        "x + 1 (not judged: mode dispatch only)": lambda: x + 1,
        "torch.zeros(16) (factory, device left out)": lambda: torch.zeros(16),
        "torch.zeros(16, device='cpu') (device given)": lambda: torch.zeros(16, device="cpu"),
        "x.to(torch.float64) (Tensor.to, no device)": lambda: x.to(torch.float64),
        "x.to('cpu') (Tensor.to, a device)": lambda: x.to("cpu"),
    }
    rows = [dict(zip(("call", "plain_us", "traced_us"), (name, *_per_call_microseconds(call, number)))) for name, call in calls.items()]
    with FakeTensorMode():  # a leak recorded at a known site, on a fake GPU
        plain, traced = _per_call_microseconds(lambda: torch.zeros(16, device="cuda:0"), number // 10)  # noqa: DL008 - a fake leak, on purpose
    rows.append({"call": "torch.zeros(16, device='cuda:0') recorded as a leak (FakeTensorMode)", "plain_us": plain, "traced_us": traced})
    return rows


def _loop_ms(device: str, traced: bool, workload: list[str]) -> float:
    script = str(ROOT / "benchmarks" / "conv_inference.py")
    prefix = [sys.executable, "-m", "devlint", "run", "--device", device] if traced else [sys.executable]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([*prefix, script, "--device", device, *workload], capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{'devlint run' if traced else 'python'} {script} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])["ms_per_iteration"]


def gpu_overhead(device: str, rounds: int, workload: list[str]) -> dict:
    plain, traced = [], []
    for _ in range(rounds):
        plain.append(_loop_ms(device, False, workload))
        traced.append(_loop_ms(device, True, workload))
    base, with_tracer = statistics.median(plain), statistics.median(traced)
    return {"workload": " ".join(workload), "plain_ms": base, "traced_ms": with_tracer, "ratio": with_tracer / base, "rounds": rounds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--device", help="GPU for the loop (default: cuda:1 with two GPUs, else cuda:0)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--number", type=int, default=20000, help="calls per timing on the CPU")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    figures = {"torch": torch.__version__, "cpu": cpu_overhead(args.number)}
    print(f"torch {torch.__version__}; per call on the CPU (best of 5 alternating rounds of {args.number}):")
    for row in figures["cpu"]:
        print(f"  {row['call']:<72} {row['plain_us']:7.2f} us -> {row['traced_us']:7.2f} us  (+{row['traced_us'] - row['plain_us']:.2f} us)")

    code = 0
    count = torch.cuda.device_count()  # NVML-based before CUDA is initialised: this process touches no GPU
    if not args.cpu_only and count > 0:
        device = args.device or ("cuda:1" if count >= 2 else "cuda:0")  # noqa: DL008 - GPU0 only on a one-GPU machine
        main_loop = gpu_overhead(device, args.rounds, ["--batch", "32", "--size", "224"])
        launch_bound = gpu_overhead(device, args.rounds, ["--batch", "1", "--size", "64", "--iterations", "300"])
        figures["gpu"] = {"device": device, "main": main_loop, "launch_bound": launch_bound}
        verdict = "PASS" if main_loop["ratio"] <= TARGET_RATIO else "FAIL"
        print(f"GPU inference loop on {device} (median of {args.rounds} alternating rounds, fresh processes):")
        for label, row in (("batch 32 @ 224 (target)", main_loop), ("batch 1 @ 64, launch-bound (information)", launch_bound)):
            print(f"  {label:<42} {row['plain_ms']:8.3f} ms/iter -> {row['traced_ms']:8.3f} ms/iter  ratio {row['ratio']:.3f}")
        print(f"{verdict}: devlint run costs {100 * (main_loop['ratio'] - 1):+.1f}% on the loop (target <= {100 * (TARGET_RATIO - 1):.0f}%)")
        code = 0 if verdict == "PASS" else 1
    elif not args.cpu_only:
        print("no GPU visible: GPU loop skipped")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
