"""Static + runtime, end to end on the CPU: `devlint run` writes a report, `devlint check
--runtime-report` merges it. (On a CPU build each request is judged and recorded, then fails.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "fixtures" / "checkpoints" / "audio2coeff.pth"  # tensors tagged cuda:0

APP = f"""\
import torch
from helperlib import Helper


def main(device):
    try:
        helper = Helper(size=3)
    except (RuntimeError, AssertionError):
        pass
    try:
        torch.load({str(CHECKPOINT)!r})
    except (RuntimeError, AssertionError):
        pass


main(torch.device("cuda:1"))
"""
LIBRARY = """\
import torch


class Helper:
    def __init__(self, size=3, device="cuda"):
        self.template = torch.zeros(size, device=device)
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    library = tmp_path / "venv" / "lib" / "site-packages" / "helperlib"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text(LIBRARY)
    return tmp_path


def _devlint(*args, cwd, extra_path=""):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), extra_path]))}
    env.pop("DEVLINT_DEVICE", None)
    return subprocess.run([sys.executable, "-m", "devlint", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)


def test_library_leak_lands_at_the_callers_line_and_a_shared_leak_is_confirmed(project):
    site_packages = project / "venv" / "lib" / "site-packages"
    run = _devlint("run", "--device", "cuda:1", "--report", "report.json", "app.py", cwd=project, extra_path=str(site_packages))
    assert run.returncode == 1, run.stderr
    report = json.loads((project / "report.json").read_text())
    assert {(leak["code"], leak["line"]) for leak in report["leaks"]} == {("DL012", 7), ("DL005", 11)}

    check = _devlint("check", "app.py", "--runtime-report", "report.json", "--output-format", "json", "--no-cache", cwd=project)
    findings = {f["code"]: f for f in json.loads(check.stdout)}
    library = findings["DL012"]
    assert library["location"]["row"] == 7 and library["runtime"]["runtime_only"] is True
    assert library["fix"]["edits"][0]["content"] == ", device=device" and "Helper" in library["message"]
    load = findings["DL005"]
    assert load["location"]["row"] == 11 and load["runtime"]["count"] == 1 and "runtime_only" not in load["runtime"]

    text = _devlint("check", "app.py", "--runtime-report", "report.json", "--no-cache", cwd=project)
    first, *_ = text.stdout.splitlines()
    assert "confirmed at runtime" in first  # confirmed findings come first

    fixed = _devlint("check", "app.py", "--runtime-report", "report.json", "--fix", "--unsafe-fixes", "--no-cache", cwd=project)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    source = (project / "app.py").read_text()
    assert "Helper(size=3, device=device)" in source and "map_location=device" in source


POOLED_APP = """\
from transformers import AutoModel


def main():
    model = AutoModel.from_pretrained("tiny-model"{options})
    return model


main()
"""
POOLED_LIBRARY = """\
import concurrent.futures

import torch


def _materialise(name, device):
    try:
        return torch.ones(2).to(device)
    except (RuntimeError, AssertionError):  # a CPU build refuses once devlint has judged it
        return None


class AutoModel:
    @classmethod
    def from_pretrained(cls, path, device_map=None):
        device = 0 if device_map in (None, "auto") else device_map.get("", "cpu")  # a stand-in that fills GPU 0 by default
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(lambda name: _materialise(name, device), ["a", "b", "c"]))
"""


# Without device_map the leak is seen at runtime only; with device_map="auto" DL021 reports
# the line from the source too, but only the run knows the device to write in its fix.
@pytest.mark.parametrize("options", ["", ', device_map="auto"'], ids=["runtime-only", "confirmed"])
def test_a_pooled_load_is_blamed_at_the_users_line_and_fixed_with_the_apis_own_option(tmp_path, options):
    (tmp_path / "app.py").write_text(POOLED_APP.replace("{options}", options))
    library = tmp_path / "venv" / "lib" / "site-packages" / "transformers"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text(POOLED_LIBRARY)
    site_packages = str(library.parent)
    run = _devlint("run", "--device", "cuda:1", "--report", "report.json", "app.py", cwd=tmp_path, extra_path=site_packages)
    assert run.returncode == 1, run.stderr
    [leak] = json.loads((tmp_path / "report.json").read_text())["leaks"]
    assert (leak["code"], leak["filename"], leak["line"], leak["count"]) == ("DL008", str(tmp_path / "app.py"), 5, 3)
    assert leak["origin"].startswith(str(library / "__init__.py") + ":8 in _materialise")
    assert leak["option"] == {"call": "from_pretrained", "keyword": "device_map", "value": '{"": "cuda:1"}'}
    assert leak["suggestion"] == 'pass `device_map={"": "cuda:1"}` to `from_pretrained()`, the API\'s own option for its device'
    assert "app.py:5  DL008" in run.stderr

    fixed = _devlint("check", "app.py", "--runtime-report", "report.json", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert 'AutoModel.from_pretrained("tiny-model", device_map={"": "cuda:1"})' in (tmp_path / "app.py").read_text()
    rerun = _devlint("run", "--device", "cuda:1", "--report", "report.json", "app.py", cwd=tmp_path, extra_path=site_packages)
    assert rerun.returncode == 0 and json.loads((tmp_path / "report.json").read_text())["leaks"] == []
