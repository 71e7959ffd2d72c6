"""Run each GPU scenario under `devlint run` in a fresh process and check the report.

A scenario (scenarios/*.py) is a small program. Its header says how to run it
(`# devlint: --device cuda:1`, `# env: CUDA_VISIBLE_DEVICES=1`) and each line that must
be reported carries `# expect: CODE`. A scenario with no expectation must be clean.
Every scenario imports `_probe`, which, after devlint has written its report, records
what the driver and NVML say about the process; for a clean scenario that must show
nothing on physical GPU0, so devlint itself did not touch it either.

Runs without pytest too: `python tests/gpu/scenario_check.py` prints PASS/FAIL per
scenario and exits non-zero if any failed. Needs 2+ GPUs, torch and click.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIOS = sorted(p for p in SCENARIO_DIR.glob("*.py") if not p.name.startswith("_"))
_EXPECT = re.compile(r"#\s*expect:\s*(DL\d+)")
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
    """A checkpoint whose tensors are tagged `cuda:0`, written on physical GPU 1 so that
    making it leaves GPU0 alone."""
    code = "import sys, torch; torch.save({'weight': torch.randn(1024, 1024, device='cuda:0')}, sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=_environment({"CUDA_VISIBLE_DEVICES": "1"}))
    return path


def parse(scenario: Path) -> tuple[list[str], dict, set[tuple[str, int]]]:
    """(devlint run options, environment, {(code, line)} expected)."""
    options, environment, expected = [], {}, set()
    for number, line in enumerate(scenario.read_text().splitlines(), start=1):
        if line.startswith("# devlint:"):
            options += line.split(":", 1)[1].split()
        elif line.startswith("# env:"):
            key, value = line.split(":", 1)[1].strip().split("=", 1)
            environment[key] = value
        for code in _EXPECT.findall(line):
            expected.add((code, number))
    return options, environment, expected


def run(scenario: Path, workdir: Path, checkpoint: Path) -> tuple[subprocess.CompletedProcess, dict | None, dict | None]:
    options, environment, _ = parse(scenario)
    report_path, probe_path = workdir / f"{scenario.stem}.report.json", workdir / f"{scenario.stem}.probe.json"
    environment.update(DEVLINT_PROBE=str(probe_path), DEVLINT_CHECKPOINT=str(checkpoint))
    command = [sys.executable, "-m", "devlint", "run", *options, "--report", str(report_path), str(scenario)]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=_environment(environment), timeout=300)
    read = lambda path: json.loads(path.read_text()) if path.is_file() else None  # noqa: E731
    return result, read(report_path), read(probe_path)


def check(scenario: Path, workdir: Path, checkpoint: Path) -> list[str]:
    """Run one scenario; returns warnings, raises AssertionError on failure."""
    _, environment, expected = parse(scenario)
    result, report, probe = run(scenario, workdir, checkpoint)
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
    import tempfile

    count = gpu_count()
    if count < 2:
        print(f"SKIP: these tests need 2 GPUs, found {count}")
        return 0
    failures = 0
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        checkpoint = make_checkpoint(workdir / "saved_on_cuda0.pt")
        for scenario in SCENARIOS:
            try:
                for warning in check(scenario, workdir, checkpoint):
                    print(f"WARN {warning}")
                print(f"PASS {scenario.name}")
            except AssertionError as exc:
                failures += 1
                print(f"FAIL {scenario.name}: {exc}")
    print(f"{len(SCENARIOS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
