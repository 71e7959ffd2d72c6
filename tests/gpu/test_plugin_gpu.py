"""The pytest plugin on two GPUs, aiming at cuda:1: leaking tests fail, clean ones pass,
including a leak from a module-scoped fixture and one from a library default.
Skipped without two GPUs. Run: python -m pytest tests/gpu -v"""

import importlib.metadata
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from scenario_check import gpu_count

pytestmark = pytest.mark.skipif(gpu_count() < 2, reason="needs two GPUs")
ROOT = Path(__file__).resolve().parents[2]

SUITE = '''
import pytest
import torch
from facekit import FaceHelper  # fixtures/site-packages: defaults `device` to "cuda"


@pytest.fixture(scope="module")
def grid():
    return torch.arange(4).cuda()  # leaks in the fixture: charged to the first test using it


def test_uses_grid(grid):
    assert grid.numel() == 4


def test_uses_grid_again(grid):
    assert grid.numel() == 4


def test_explicit_device_is_clean():
    assert torch.zeros(2, device="cuda:1").device.index == 1


def test_cuda_method_leaks():
    torch.ones(2).cuda()


def test_library_default_leaks():
    FaceHelper(size=8)


def test_type_as_is_clean():
    ref = torch.ones(2, device="cuda:1")
    assert torch.arange(2).type_as(ref).device.index == 1


@pytest.mark.devlint(device="cuda:0")
def test_marker_allows_gpu0():
    torch.zeros(1, device="cuda:0")


def test_zz_set_device_first_is_clean():
    torch.cuda.set_device(1)
    assert torch.ones(2).cuda().device.index == 1
'''


def test_leaking_tests_fail_and_clean_tests_pass(tmp_path):
    (tmp_path / "test_gpu_suite.py").write_text(SUITE.lstrip("\n"))
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "DEVLINT_DEVICE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "fixtures" / "site-packages"), env.get("PYTHONPATH", "")])
    installed = any(ep.name == "devlint" for ep in importlib.metadata.entry_points(group="pytest11"))
    command = [
        sys.executable, "-m", "pytest", "test_gpu_suite.py", "-p", "no:cacheprovider",
        *([] if installed else ["-p", "devlint.pytest_plugin"]), "--devlint-device", "cuda:1",
        "--junitxml", "results.xml", "--devlint-report", "report.json",
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    print(result.stdout[-6000:])
    outcomes = {}
    for case in ET.parse(tmp_path / "results.xml").getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name")] = "failed" if failed else "passed"
    assert outcomes == {
        "test_uses_grid": "failed",
        "test_uses_grid_again": "passed",
        "test_explicit_device_is_clean": "passed",
        "test_cuda_method_leaks": "failed",
        "test_library_default_leaks": "failed",
        "test_type_as_is_clean": "passed",
        "test_marker_allows_gpu0": "passed",
        "test_zz_set_device_first_is_clean": "passed",
    }, result.stdout[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    codes = sorted((leak["code"], leak["line"]) for leak in report["leaks"])
    lines = SUITE.lstrip("\n").splitlines()
    line_of = lambda text: next(i for i, line in enumerate(lines, start=1) if text in line)  # noqa: E731
    assert ("DL012", line_of("FaceHelper(size=8)")) in codes
    assert any(line == line_of("torch.arange(4).cuda()") for _, line in codes)
    assert any(line == line_of("torch.ones(2).cuda()") for _, line in codes)
    assert "= devlint =" in result.stdout
