"""SadTalker's face renderer on cuda:1, before and after `devlint check --fix --unsafe-fixes`
(issue 16): before, it crashes on a device mismatch with a context and memory on GPU0,
and `devlint run` names the coordinate-grid lines; after, it runs with nothing on GPU0,
no leak, and the output of the unfixed code run with CUDA_VISIBLE_DEVICES=1.

Needs two GPUs and a SadTalker checkout: DEVLINT_SADTALKER=/path/to/SadTalker
python -m pytest tests/gpu/test_talking_heads_gpu.py -v -s (skipped otherwise). Weights are
random (benchmarks/talking_heads.py); nothing is downloaded."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scenario_check import gpu_count

ROOT = Path(__file__).resolve().parents[2]
SADTALKER = os.environ.get("DEVLINT_SADTALKER")
HARNESS = ROOT / "benchmarks" / "talking_heads.py"

pytestmark = [
    pytest.mark.skipif(gpu_count() < 2, reason="needs two GPUs"),
    pytest.mark.skipif(not SADTALKER, reason="needs DEVLINT_SADTALKER, a SadTalker checkout"),
]


def _python(*args, env=None):
    environment = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "DEVLINT_DEVICE")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    environment.update(env or {})
    return subprocess.run([sys.executable, *map(str, args)], env=environment, capture_output=True, text=True, timeout=600)


def _gpu0(report):
    (row,) = [g for g in report["gpus"] if g["physical"] == 0]
    return row


def test_renderer_on_cuda1_before_and_after_the_fix(tmp_path):
    copy = tmp_path / "SadTalker"
    shutil.copytree(SADTALKER, copy, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    render = [HARNESS, "sadtalker", "--repo", copy, "--device", "cuda:1", "--frames", "8", "--repeats", "1"]

    before = _python("-m", "devlint", "run", "--device", "cuda:1", "--report", tmp_path / "before.json", *render)
    report = json.loads((tmp_path / "before.json").read_text())
    print(before.stderr[-3000:])
    assert before.returncode != 0 and "Expected all tensors to be on the same device" in before.stderr
    grids = {(Path(l["filename"]).name, l["line"], l["code"]) for l in report["leaks"]}
    assert {("util.py", 56, "DL003"), ("util.py", 57, "DL003"), ("util.py", 58, "DL003")} <= grids
    assert _gpu0(report)["context"] and _gpu0(report)["memory"] > 0

    fixed = _python("-m", "devlint", "check", copy, "--runtime-report", tmp_path / "before.json", "--fix", "--unsafe-fixes", "--no-cache")
    print(fixed.stdout[-3000:])
    assert "src/facerender/modules/util.py" in fixed.stdout

    after = _python("-m", "devlint", "run", "--device", "cuda:1", "--report", tmp_path / "after.json", *render, "--out", tmp_path / "after.pt")
    report = json.loads((tmp_path / "after.json").read_text())
    print(after.stdout[-1000:], after.stderr[-2000:])
    assert after.returncode == 0 and report["leaks"] == []
    assert not _gpu0(report)["context"] and not _gpu0(report)["memory"]

    reference = _python(HARNESS, "sadtalker", "--repo", SADTALKER, "--device", "cuda:0", "--frames", "8", "--repeats", "1",
                        "--out", tmp_path / "reference.pt", env={"CUDA_VISIBLE_DEVICES": "1"})
    assert reference.returncode == 0, reference.stderr[-2000:]
    same = _python(HARNESS, "compare", tmp_path / "reference.pt", tmp_path / "after.pt")
    assert same.returncode == 0, same.stdout
