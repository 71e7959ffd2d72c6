"""Run each GPU scenario under `devlint run` in a fresh process and check the report.

A scenario (scenarios/*.py) is a small program. Its header says how to run it
(`# devlint: --device cuda:1`, `# env: CUDA_VISIBLE_DEVICES=1`) and each line that must
be reported carries `# expect: CODE`. A scenario with no expectation must be clean.
Every scenario imports `_probe`, which, after devlint has written its report, records
what the driver and NVML say about the process; for a clean scenario that must show
nothing on physical GPU0, so devlint itself did not touch it either.

With `--allowed cpu` every scenario runs with `--device cpu` instead: each CUDA touch is
then a leak, and one GPU is enough. A line marked `# cpu: CODE` reports CODE in that run
(in place of its `# expect:`), and the scenarios' own GPU (`_probe.INTENDED`) is cuda:0.
Clean scenarios that use a GPU are skipped there; a `# cpu: clean` header keeps one that
stays clean. `--thorough` runs `devlint run --thorough`: both modes must report the same.

Runs without pytest too: `python tests/gpu/scenario_check.py [--allowed cpu] [--thorough]`
prints PASS/FAIL per scenario and exits non-zero if any failed. Needs 2+ GPUs (1 with
`--allowed cpu`), torch and click.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIOS = sorted(p for p in SCENARIO_DIR.glob("*.py") if not p.name.startswith("_"))
_EXPECT = re.compile(r"#\s*expect:\s*(DL\d+)")
_CPU_EXPECT = re.compile(r"[#,]\s*cpu:\s*(DL\d+)")
_CLEARED = ("CUDA_VISIBLE_DEVICES", "DEVLINT_DEVICE", "DEVLINT_STRICT", "LOCAL_RANK")


def gpu_count() -> int:
    """Physical GPUs, from NVML or nvidia-smi: the pytest process never touches CUDA."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    if shutil.which("nvidia-smi") is None:
        return 0
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines()) if listed.returncode == 0 else 0


def _environment(extra: dict) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    environment.update(extra)
    return environment


def make_checkpoint(path: Path) -> Path:
    """A checkpoint whose tensors are tagged `cuda:0`, as if saved from GPU0; written by a
    process that sees no GPU (the tag is what torch.load restores to)."""
    code = (
        "import sys, torch, torch.serialization as s; s.location_tag = lambda storage: 'cuda:0'; "
        "torch.save({'weight': torch.randn(1024, 1024)}, sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=_environment({"CUDA_VISIBLE_DEVICES": ""}))
    return path


@dataclass(frozen=True)
class Plan:
    """How one scenario runs and what it must report."""

    options: list[str]  # devlint run's
    environment: dict
    expected: set[tuple[str, int]]  # (code, line)
    runs: bool  # False: not part of this kind of run (a clean GPU program when only the CPU is allowed)


def parse(scenario: Path, allowed: str | None = None, thorough: bool = False) -> Plan:
    """The plan for `scenario`; `allowed`: None for the scenario's own `--device`, or "cpu"."""
    options, environment, expected, stays_clean = [], {}, set(), False
    for number, line in enumerate(scenario.read_text().splitlines(), start=1):
        if line.startswith("# devlint:"):
            options += line.split(":", 1)[1].split()
        elif line.startswith("# env:"):
            key, value = line.split(":", 1)[1].strip().split("=", 1)
            environment[key] = value
        elif line.startswith("# cpu: clean"):
            stays_clean = True
        codes = _CPU_EXPECT.findall(line) if allowed == "cpu" and _CPU_EXPECT.search(line) else _EXPECT.findall(line)
        expected.update((code, number) for code in codes)
    runs = True
    if allowed is not None:
        options = _with_device(options, allowed)
        environment = {"DEVLINT_SCENARIO_GPU": "0"}
        runs = bool(expected) or stays_clean
    if thorough:
        options = [*options, "--thorough"]
    return Plan(options, environment, expected, runs)


def _with_device(options: list[str], device: str) -> list[str]:
    kept, skip = [], False
    for option in options:
        if skip:
            skip = False
        elif option == "--device":
            skip = True
        else:
            kept.append(option)
    return ["--device", device, *kept]


def run(scenario: Path, plan: Plan, workdir: Path, checkpoint: Path) -> tuple[subprocess.CompletedProcess, dict | None, dict | None]:
    report_path, probe_path = workdir / f"{scenario.stem}.report.json", workdir / f"{scenario.stem}.probe.json"
    environment = dict(plan.environment, DEVLINT_PROBE=str(probe_path), DEVLINT_CHECKPOINT=str(checkpoint))
    command = [sys.executable, "-m", "devlint", "run", *plan.options, "--report", str(report_path), str(scenario)]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=_environment(environment), timeout=300)
    read = lambda path: json.loads(path.read_text()) if path.is_file() else None  # noqa: E731
    return result, read(report_path), read(probe_path)


def check(scenario: Path, workdir: Path, checkpoint: Path, allowed: str | None = None, thorough: bool = False) -> list[str]:
    """Run one scenario; returns warnings, raises AssertionError on failure."""
    plan = parse(scenario, allowed, thorough)
    environment, expected = plan.environment, plan.expected
    result, report, probe = run(scenario, plan, workdir, checkpoint)
    context = f"\n--- stderr ---\n{result.stderr}"
    assert report is not None, f"no report written (exit {result.returncode}){context}"
    assert probe is not None, f"the probe did not run (exit {result.returncode}){context}"
    assert result.returncode == (1 if expected else 0), f"exit {result.returncode}{context}"

    found = {(leak["code"], leak["line"]) for leak in report["leaks"]}
    assert found == expected, f"reported {sorted(found)}, expected {sorted(expected)}{context}"
    assert all(leak["filename"] == str(scenario) and leak["device"] == "cuda:0" for leak in report["leaks"]), context

    warnings = []
    memory = {int(index): used for index, used in probe["memory"].items()}
    gpu0_memory = memory.get(0, 0)
    pid_unmatched = any(probe["contexts"]) and not memory
    if pid_unmatched:
        warnings.append(f"{scenario.name}: NVML ({probe['source']}) lists no memory for the process (PID namespace?): judged by the driver's context state only")
    # Physical GPU0 is the program's cuda:0 unless CUDA_VISIBLE_DEVICES hides it.
    gpu0_logical = 0 if "CUDA_VISIBLE_DEVICES" not in environment else None
    gpu0_context = gpu0_logical is not None and len(probe["contexts"]) > gpu0_logical and probe["contexts"][gpu0_logical]
    if expected:
        assert gpu0_memory > 0 or gpu0_context, f"the scenario did not reach GPU0: {probe}"
        assert any("created the CUDA context on cuda:0" in leak["message"] for leak in report["leaks"]), f"no leak named the call that created the GPU0 context{context}"
        assert report["gpus"][0]["context"] and not report["gpus"][0]["allowed"], report["gpus"]
    else:
        assert gpu0_memory == 0 and not gpu0_context, f"physical GPU0 was touched by a clean program under devlint: {probe}"
    if scenario.name == "clean_cpu_only.py":
        assert not probe["cuda_initialised"] and not memory, f"a CPU-only program initialised CUDA or holds GPU memory: {probe}"
    return warnings


def main() -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allowed", choices=["cpu"], help="run every scenario with only the CPU allowed (needs one GPU)")
    parser.add_argument("--thorough", action="store_true", help="run devlint run --thorough")
    args = parser.parse_args()
    needed = 1 if args.allowed == "cpu" else 2
    count = gpu_count()
    if count < needed:
        print(f"SKIP: these tests need {needed} GPU{'s' if needed > 1 else ''}, found {count}")
        return 0
    failures = ran = 0
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        checkpoint = make_checkpoint(workdir / "saved_on_cuda0.pt")
        for scenario in SCENARIOS:
            if not parse(scenario, args.allowed).runs:
                print(f"SKIP {scenario.name}: a clean program on a GPU leaks on every line when only the CPU is allowed")
                continue
            ran += 1
            try:
                for warning in check(scenario, workdir, checkpoint, args.allowed, args.thorough):
                    print(f"WARN {warning}")
                print(f"PASS {scenario.name}")
            except AssertionError as exc:
                failures += 1
                print(f"FAIL {scenario.name}: {exc}")
    print(f"{ran - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
