"""A leak no hook of the default mode sees, on a real GPU: the context oracle finds the GPU0
context at the next intercepted call (DL101), the allocator's history then names the line
of every later allocation (DL106); --thorough judges the call itself. One GPU is enough
(only the CPU is allowed). Run: python -m pytest tests/gpu/test_history_gpu.py -v"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scenario_check import gpu_count

pytestmark = pytest.mark.skipif(gpu_count() < 1, reason="needs a GPU")
ROOT = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent(
    """
    import torch

    raw_zeros = torch._C._VariableFunctions.zeros  # what a module bound before tracing holds


    def scratch():
        return raw_zeros(1024, device="cuda:0")  # line 8


    for step in range(3):
        buffer = scratch()
        torch.cuda.synchronize(0)  # line 13: an intercepted call
    """
)


def _run(tmp_path, *options):
    (tmp_path / "program.py").write_text(PROGRAM)
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "DEVLINT_DEVICE", "DEVLINT_THOROUGH")}
    env["PYTHONPATH"] = str(ROOT)
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "devlint", "run", "--device", "cpu", *options, "--report", str(report), "program.py"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert report.is_file(), result.stderr
    return {(leak["code"], leak["line"]): leak for leak in json.loads(report.read_text())["leaks"]}


def test_the_default_mode_finds_it_through_the_oracle_and_the_allocator_history(tmp_path):
    leaks = _run(tmp_path)
    assert sorted(leaks) == [("DL008", 13), ("DL101", 13), ("DL106", 8)]
    assert leaks["DL106", 8]["count"] == 2 and leaks["DL106", 8]["bytes"] >= 2 * 4096  # recorded from the second step on
    assert leaks["DL106", 8]["device"] == "cuda:0"


def test_the_thorough_mode_judges_the_call_itself(tmp_path):
    leaks = _run(tmp_path, "--thorough")
    assert sorted(leaks) == [("DL008", 8), ("DL008", 13)]
    assert "created the CUDA context on cuda:0" in leaks["DL008", 8]["message"]
