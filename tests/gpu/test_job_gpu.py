"""The job on one real GPU, with `--device cpu`, so every CUDA touch is a leak (issue 13):
DataLoader workers that touch CUDA, and a two-rank gloo torchrun job whose rank 1 touches
CUDA, under both launch forms. The report must name each line and rank, show the
context in the leaking process's GPU rows, and agree with nvidia-smi on which processes
held GPU memory (each leaking process asks nvidia-smi itself, while it is alive).
Skipped without a GPU. Run: python -m pytest tests/gpu/test_job_gpu.py -v -s"""

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

HELD = """
def held_by_nvidia_smi():
    import os, shutil, subprocess
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    return any(line.split(",")[0].strip() == str(os.getpid()) for line in out.splitlines())
"""

WORKERS = HELD + """
import json, os, sys
import torch
from torch.utils.data import DataLoader, Dataset


class Touching(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        x = torch.ones(4).cuda()  # line 19
        return json.dumps({"pid": os.getpid(), "held": held_by_nvidia_smi()})


if __name__ == "__main__":
    loader = DataLoader(Touching(), num_workers=2, multiprocessing_context="spawn", batch_size=None)
    print(json.dumps([json.loads(item) for item in loader]))
"""

TRAIN = HELD + """
import json, os
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
if dist.get_rank() == 1:
    x = torch.ones(4).cuda()  # line 15
    print(json.dumps({"rank": 1, "pid": os.getpid(), "held": held_by_nvidia_smi()}), flush=True)
total = torch.ones(1)
dist.all_reduce(total)
dist.destroy_process_group()
"""


def _run(command, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "DEVLINT_DEVICE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run([sys.executable, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    print(result.stderr[-3000:])
    return result


def _context_rows(report, pid):
    return [g for g in report["gpus"] if g["pid"] == pid and g["context"]]


def test_dataloader_workers_touching_cuda(tmp_path):
    (tmp_path / "workers.py").write_text(textwrap.dedent(WORKERS))
    result = _run(["-m", "devlint", "run", "--device", "cpu", "--report", "report.json", "workers.py"], tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    seen = json.loads(result.stdout.splitlines()[-1])
    [leak] = [l for l in report["leaks"] if l["line"] == 19]
    assert leak["code"] == "DL001" and leak["created_context"]
    pids = {p["pid"] for p in leak["processes"]}
    assert pids == {s["pid"] for s in seen}  # every worker that ran, and only they
    for pid in pids:
        assert _context_rows(report, pid), f"worker {pid} shows no context in the report"
    held = [s["held"] for s in seen]
    assert None in held or all(held), f"nvidia-smi did not list every worker: {seen}"


@pytest.mark.parametrize("devlint_outside", [True, False], ids=["devlint-run-wraps-torchrun", "torchrun-runs-devlint"])
def test_torchrun_rank_touching_cuda(tmp_path, devlint_outside):
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    devlint = ["-m", "devlint", "run", "--device", "cpu", "--report", "report.json"]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    result = _run([*devlint, *torchrun, "train.py"] if devlint_outside else [*torchrun, *devlint, "train.py"], tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    [leak] = [l for l in report["leaks"] if l["line"] == 15]
    [process] = leak["processes"]
    assert (leak["code"], process["rank"], process["local_rank"]) == ("DL001", 1, 1)
    assert _context_rows(report, process["pid"]), "rank 1 shows no context in the report"
    assert not any(_context_rows(report, p["pid"]) for p in report["processes"] if p["rank"] == 0), "rank 0 touched no GPU"
    [line] = [json.loads(l) for l in result.stdout.splitlines() if l.startswith('{"rank"')]
    assert line["pid"] == process["pid"] and line["held"] in (True, None)
    assert result.stderr.count("devlint: ") >= 1 and "train.py:15  DL001  rank 1: 1 call" in result.stderr
    print(json.dumps(report, indent=1)[:4000])

