"""Which `torch.cuda` calls leave a CUDA context on the current GPU, and does devlint say so?

Each candidate call runs alone in a fresh process under `devlint run --device cpu` (so any
use of a GPU is a leak). The truth is NVML: the process's own memory on physical GPU 0,
read by the process itself after the call, while its context is still alive (pynvml, else
`nvidia-smi --query-compute-apps`). devlint's verdict is its report: a leak on cuda:0 and its
line. The table prints call -> NVML bytes on GPU0 -> devlint's verdict -> line, and the
script exits 1 on any disagreement: a context devlint missed, a leak NVML did not see, or a
leak without a line. For issue 24's sixteen calls the line must also be the call's own.

    python benchmarks/cuda_probe.py --device cpu [--sweep] [--jobs 8] [--json probe.json]

Needs one GPU (CUDA_VISIBLE_DEVICES may select it); `--list` prints the candidates anywhere.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALL_LINE = 8  # the line of the call in every probe program (see PROGRAM)

# Issue 24's sixteen: (name, setup, call, leaves a context) as measured on torch 2.11 / H100.
ISSUE_CALLS = [
    ("Tensor.pin_memory()", "x = torch.ones(1024)", "x.pin_memory()", True),
    ("DataLoader(pin_memory=True) loop", "loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(8, 4)), batch_size=4, pin_memory=True)", "batches = [b for b in loader]", True),
    ("torch.empty(n, pin_memory=True)", "n = 1024", "torch.empty(n, pin_memory=True)", True),
    ("torch.cuda.CUDAGraph()", "pass", "graph = torch.cuda.CUDAGraph()", True),
    ("torch.cuda.caching_allocator_alloc", "pass", "pointer = torch.cuda.caching_allocator_alloc(1024)", True),
    ("torch.cuda.current_stream()", "pass", "stream = torch.cuda.current_stream()", True),
    ("torch.cuda.get_rng_state()", "pass", "state = torch.cuda.get_rng_state()", False),
    ("torch.cuda.memory_stats()", "pass", "stats = torch.cuda.memory_stats()", False),
    ("torch.cuda.reset_peak_memory_stats()", "pass", "torch.cuda.reset_peak_memory_stats()", False),
    ("torch.cuda.set_per_process_memory_fraction(0.5)", "pass", "torch.cuda.set_per_process_memory_fraction(0.5)", False),
    ("torch.cuda.get_device_properties(0)", "pass", "props = torch.cuda.get_device_properties(0)", False),
    ("torch.cuda.is_bf16_supported()", "pass", "supported = torch.cuda.is_bf16_supported()", False),
    ("CPU-only control", "x = torch.ones(1024)", "y = (x * 2).sum()", False),
    ("torch.Generator('cuda').manual_seed(1)", "pass", "generator = torch.Generator(device='cuda').manual_seed(1)", False),
    ("torch.cuda.is_available()", "pass", "available = torch.cuda.is_available()", False),
    ("torch.cuda.empty_cache()", "pass", "torch.cuda.empty_cache()", False),
]

# Public names of torch.cuda (and its memory/random modules) never called by the sweep:
# they change process-wide settings, write files, or wait on something that never comes.
SKIPPED = {
    "ipc_collect",
    "set_sync_debug_mode",
    "manual_seed",
    "manual_seed_all",
    "seed",
    "seed_all",
    "set_rng_state",
    "set_rng_state_all",
    "set_stream",
    "set_device",
    "_lazy_init",
    "cudart",
    "check_error",
    "OutOfMemoryError",
    "CudaError",
    "DeferredCudaCallError",
}

PROGRAM = """\
import json
import os
import sys

import torch
sys.path.insert(0, {bench!r})
{setup}
{call}
from cuda_probe import record_truth
record_truth({truth!r})
"""


def own_memory_on_gpu0() -> int | None:
    """This process's memory on physical GPU 0 by NVML (pynvml, else nvidia-smi); None if unknown."""
    pid = os.getpid()
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(_physical_gpu())
            return sum(p.usedGpuMemory or 0 for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == pid)
        finally:
            pynvml.nvmlShutdown()
    except ImportError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    uuid = subprocess.run([smi, "-i", str(_physical_gpu()), "--query-gpu=uuid", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    rows = subprocess.run([smi, "--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    used = 0
    for row in rows.splitlines():
        cells = [c.strip() for c in row.split(",")]
        if len(cells) == 3 and cells[0] == str(pid) and cells[1] == uuid and cells[2].isdigit():
            used += int(cells[2]) << 20
    return used


def _physical_gpu() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    first = visible.split(",")[0].strip() if visible else "0"
    return int(first) if first.isdigit() else 0


def record_truth(path: str) -> None:
    """Called by each probe program after its call: what NVML says now."""
    Path(path).write_text(json.dumps({"gpu0_bytes": own_memory_on_gpu0()}))


def sweep_calls() -> list[tuple[str, str, str, bool | None]]:
    """Public torch.cuda callables (functions and classes) that take no required argument."""
    import torch.cuda
    import torch.cuda.memory
    import torch.cuda.random

    found, seen = [], set()
    for module in (torch.cuda, torch.cuda.memory, torch.cuda.random):
        for name in sorted(dir(module)):
            value = getattr(module, name)
            if name.startswith("_") or name in SKIPPED or id(value) in seen or not callable(value) or inspect.ismodule(value):
                continue
            if isinstance(value, type) and issubclass(value, BaseException):
                continue
            if not getattr(value, "__module__", "").startswith("torch.cuda"):
                continue
            try:
                parameters = inspect.signature(value).parameters.values()
            except (TypeError, ValueError):
                continue
            if any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in parameters):
                continue
            seen.add(id(value))
            qualified = f"{module.__name__}.{name}"
            found.append((f"{qualified}()", "pass", f"result = {qualified}()", None))
    return found


def probe(name: str, setup: str, call: str, device: str, workdir: Path) -> dict:
    slug = "".join(c if c.isalnum() else "_" for c in name)[:60]
    program, report, truth = workdir / f"{slug}.py", workdir / f"{slug}.report.json", workdir / f"{slug}.truth.json"
    program.write_text(PROGRAM.format(bench=str(ROOT / "benchmarks"), setup=setup, call=call, truth=str(truth)))
    assert program.read_text().splitlines()[CALL_LINE - 1] == call
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    environment.pop("DEVLINT_DEVICE", None)
    command = [sys.executable, "-m", "devlint", "run", "--device", device, "--report", str(report), str(program)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    result = {"call": name, "exit": done.returncode, "gpu0_bytes": None, "leaks": [], "error": None}
    if truth.is_file():
        result["gpu0_bytes"] = json.loads(truth.read_text())["gpu0_bytes"]
    else:
        result["error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
    if report.is_file():
        result["leaks"] = [
            {"code": leak["code"], "line": leak["line"], "device": leak["device"], "file": os.path.basename(leak["filename"])}
            for leak in json.loads(report.read_text())["leaks"]
        ]
    return result


def judge(result: dict, expected: bool | None, strict_line: bool) -> str:
    """"ok" or why devlint and NVML disagree."""
    if result["gpu0_bytes"] is None:
        return f"no truth ({result['error'] or 'NVML unavailable'})"
    held = result["gpu0_bytes"] > 0
    on_gpu0 = [leak for leak in result["leaks"] if leak["device"] == "cuda:0"]
    if expected is not None and held != expected:
        note = "now leaves a context" if held else "no longer leaves a context"
    else:
        note = ""
    if held and not on_gpu0:
        return "MISSED: NVML shows memory on GPU0, devlint reported nothing"
    if on_gpu0 and not held:
        return "FALSE ALARM: devlint reported a leak, NVML shows nothing"
    if any(leak["line"] < 1 for leak in on_gpu0):
        return "a leak without a line"
    if strict_line and on_gpu0 and not any(leak["line"] == CALL_LINE for leak in on_gpu0):
        return f"blamed at line {on_gpu0[0]['line']}, not the call's line {CALL_LINE}"
    return "ok" + (f" (torch changed: {note})" if note else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="devlint's allowed device (default cpu: every GPU use is a leak)")
    parser.add_argument("--sweep", action="store_true", help="also every public torch.cuda callable with no required argument")
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--list", action="store_true", help="print the candidates and exit")
    args = parser.parse_args(argv)
    candidates = [(n, s, c, e, True) for n, s, c, e in ISSUE_CALLS]
    if args.sweep:
        issue = " ".join(c for _, _, c, _ in ISSUE_CALLS)
        candidates += [(n, s, c, e, False) for n, s, c, e in sweep_calls() if n not in issue]
    if args.list:
        for name, *_ in candidates:
            print(name)
        return 0
    with tempfile.TemporaryDirectory(prefix="cuda-probe-") as tmp, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(probe, name, setup, textwrap.dedent(call), args.device, Path(tmp)) for name, setup, call, _, _ in candidates]
        results = [future.result() for future in futures]
    rows, failures = [], 0
    print(f"{'call':<58}{'NVML GPU0':>12}  {'devlint':<24}{'line':>5}  verdict")
    for (name, _, _, expected, strict), result in zip(candidates, results):
        verdict = judge(result, expected, strict)
        failures += not verdict.startswith("ok")
        on_gpu0 = [leak for leak in result["leaks"] if leak["device"] == "cuda:0"]
        said = ", ".join(sorted({leak["code"] for leak in on_gpu0})) or "clean"
        line = str(on_gpu0[0]["line"]) if on_gpu0 else "-"
        held = "?" if result["gpu0_bytes"] is None else f"{result['gpu0_bytes'] / 2**20:.0f} MiB"
        print(f"{name[:57]:<58}{held:>12}  {said:<24}{line:>5}  {verdict}")
        rows.append({**result, "expected": expected, "issue_call": strict, "verdict": verdict})
    print(f"\n{len(results) - failures}/{len(results)} agree with NVML")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
