"""Issue 24 on one real GPU, with `--device cpu` so any use of the GPU is a leak: a load done
in a library's thread pool is blamed at the user's line (a package of our own, and a tiny
transformers model loaded with `device_map="auto"`), with the API's own option as the fix.
Skipped without a GPU; the transformers case also without transformers and accelerate.
Run: python -m pytest tests/gpu/test_issue24_gpu.py -v -s"""

import importlib.util
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

POOL_LIBRARY = """
import concurrent.futures

import torch


def _materialise(name):
    return torch.ones(1024).to("cuda:0")  # line 7: where device_map="auto" puts the first GPU's weights


def load(names):
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(_materialise, names))
"""

POOL_PROGRAM = """
import poolpkg

weights = poolpkg.load(["a", "b", "c", "d"])  # line 3
print(sum(w.sum().item() for w in weights))
"""

TRANSFORMERS_PROGRAM = """
import tempfile

from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=64, n_positions=32)
with tempfile.TemporaryDirectory() as directory:
    GPT2LMHeadModel(config).save_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, device_map="auto")  # line 8
print(next(model.parameters()).device)
"""


def _run(tmp_path, source, extra_path=""):
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(source).lstrip("\n"))
    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), extra_path, os.environ.get("PYTHONPATH")]))}
    env.pop("DEVLINT_DEVICE", None)
    done = subprocess.run([sys.executable, "-m", "devlint", "run", "--device", "cpu", "--report", str(report), str(program)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    print(done.stderr)
    return done, json.loads(report.read_text()), str(program)


def test_a_leak_in_a_library_thread_pool_is_blamed_on_the_users_line(tmp_path):
    site = tmp_path / "site-packages"
    (site / "poolpkg").mkdir(parents=True)
    (site / "poolpkg" / "__init__.py").write_text(textwrap.dedent(POOL_LIBRARY).lstrip("\n"))
    done, report, program = _run(tmp_path, POOL_PROGRAM, str(site))
    assert done.returncode == 1
    leaks = [leak for leak in report["leaks"] if leak["device"] == "cuda:0"]
    assert {(leak["filename"], leak["line"]) for leak in leaks} == {(program, 3)}, leaks
    [leak] = leaks
    assert leak["code"] == "DL008" and leak["count"] == 4 and leak["created_context"]
    assert leak["origin"].startswith(str(site / "poolpkg" / "__init__.py") + ":7")
    gpu0 = next(g for g in report["gpus"] if g["device"] == "cuda:0")
    assert gpu0["context"] and (gpu0["memory"] or 0) > 0


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None or importlib.util.find_spec("accelerate") is None, reason="needs transformers and accelerate")
def test_a_tiny_transformers_model_loaded_with_device_map_auto_is_blamed_at_from_pretrained(tmp_path):
    done, report, program = _run(tmp_path, TRANSFORMERS_PROGRAM)
    assert done.returncode == 1
    leaks = [leak for leak in report["leaks"] if leak["device"] == "cuda:0"]
    assert leaks and all(leak["filename"] == program and leak["line"] >= 1 for leak in leaks), [(l["filename"], l["line"]) for l in leaks]
    at_load = [leak for leak in leaks if leak["line"] == 8]
    assert at_load, leaks
    assert any(leak["option"] == {"call": "from_pretrained", "keyword": "device_map", "value": '{"": "cpu"}'} for leak in at_load)
    assert 'device_map={"": "cpu"}' in done.stderr
