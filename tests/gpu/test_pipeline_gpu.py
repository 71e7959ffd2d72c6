"""Static + runtime on two GPUs: the example pipeline (fixtures/) run under
`devlint run --device cuda:1`, merged with `devlint check`, fixed with
`--fix --unsafe-fixes` plus the merged suggestions, then run again: zero leaks, and
nothing of the process on GPU0. Skipped without two GPUs. Run: python -m pytest tests/gpu -v

With DEVLINT_GPU_SUMMARY=path, the before/after figures are written there as JSON."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scenario_check import gpu_count

pytestmark = pytest.mark.skipif(gpu_count() < 2, reason="needs two GPUs")
ROOT = Path(__file__).resolve().parents[2]


def _devlint(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "DEVLINT_DEVICE")}
    # Keep what PYTHONPATH already held: the machine's own packages (libcst for the fixes) may be there.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(cwd), str(cwd / "site-packages"), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "devlint", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _run_pipeline(project, report):
    return _devlint("run", "--device", "cuda:1", "--report", report, "-m", "talking_head.app", "--device", "cuda:1", cwd=project)


def _gpu0(report):
    (gpu0,) = [g for g in report["gpus"] if g["device"] == "cuda:0"]
    return gpu0


def test_run_merge_fix_run_again(tmp_path):
    project = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", project)

    before = _run_pipeline(project, "before.json")
    first = json.loads((project / "before.json").read_text())
    sites = {(leak["code"], Path(leak["filename"]).name, leak["line"]) for leak in first["leaks"]}
    print(before.stderr[-4000:])
    assert ("DL005", "checkpoints.py", 7) in sites  # the cuda:0 checkpoint
    assert ("DL012", "preprocess.py", 8) in sites  # the library helper's default
    assert ("DL006", "timing.py", 15) in sites  # argless synchronize()
    assert _gpu0(first)["context"] and not _gpu0(first)["allowed"]

    merged = _devlint("check", ".", "--runtime-report", "before.json", "--output-format", "json", "--no-cache", cwd=project)
    findings = json.loads(merged.stdout)
    confirmed = [f for f in findings if f["runtime"] and f["runtime"].get("count")]
    runtime_only = [f for f in findings if f["runtime"] and f["runtime"].get("runtime_only")]
    assert any(f["code"] == "DL012" and f["filename"].endswith("preprocess.py") and f["fix"]["edits"] for f in runtime_only)

    fixed = _devlint("check", ".", "--runtime-report", "before.json", "--fix", "--unsafe-fixes", "--no-cache", cwd=project)
    print(fixed.stdout[-3000:], fixed.stderr[-2000:])

    after = _run_pipeline(project, "after.json")
    second = json.loads((project / "after.json").read_text())
    print(after.stdout[-2000:], after.stderr[-4000:])
    assert after.returncode == 0, after.stderr[-4000:]
    assert second["leaks"] == []
    gpu0 = _gpu0(second)
    assert not gpu0["context"] and not gpu0["memory"]  # NVML: nothing of the process on GPU0

    summary = {
        "before": {"exit": before.returncode, "leaks": sorted(sites), "gpus": first["gpus"]},
        "merged": {"findings": len(findings), "confirmed": len(confirmed), "runtime_only": len(runtime_only)},
        "after": {"exit": after.returncode, "leaks": second["leaks"], "gpus": second["gpus"]},
    }
    if os.environ.get("DEVLINT_GPU_SUMMARY"):
        Path(os.environ["DEVLINT_GPU_SUMMARY"]).write_text(json.dumps(summary, indent=2))
