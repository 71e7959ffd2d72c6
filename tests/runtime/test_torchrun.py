"""torchrun jobs on the CPU (gloo, two ranks), both ways around: one report, one summary.

With `--device auto` each rank may use only `cuda:$LOCAL_RANK`; rank 1 asks for cuda:0.
"""

import json
import subprocess
import sys
import textwrap

import pytest
from rt_helpers import repo_environment

TRAIN = """
import os

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
if dist.get_rank() == 1:
    try:
        torch.zeros(1, device="cuda:0")  # line 10
    except (AssertionError, RuntimeError):
        pass
    if os.environ.get("CRASH"):
        raise SystemExit("rank 1 crashed")
if not os.environ.get("CRASH"):
    total = torch.ones(1)
    dist.all_reduce(total)
    assert total.item() == 2
dist.destroy_process_group()
"""

DEVLINT = ["-m", "devlint", "run", "--device", "auto"]
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def run_job(tmp_path, devlint_outside: bool, **env):
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    report = tmp_path / "report.json"
    if devlint_outside:
        command = [sys.executable, *DEVLINT, "--report", str(report), *TORCHRUN, "train.py"]
    else:
        command = [sys.executable, *TORCHRUN, *DEVLINT, "--report", str(report), "train.py"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=repo_environment(**env), timeout=180)
    assert report.is_file(), result.stderr
    return result, json.loads(report.read_text())


@pytest.mark.parametrize("devlint_outside", [True, False], ids=["devlint-run-wraps-torchrun", "torchrun-runs-devlint"])
def test_one_report_for_the_job_with_each_rank_on_its_own_gpu(tmp_path, devlint_outside):
    result, report = run_job(tmp_path, devlint_outside)
    [leak] = report["leaks"]
    assert (leak["code"], leak["line"], leak["device"], leak["filename"]) == ("DL008", 10, "cuda:0", str(tmp_path / "train.py"))
    [process] = leak["processes"]
    assert (process["rank"], process["local_rank"], process["count"]) == (1, 1, 1)
    ranks = {p["rank"]: p for p in report["processes"] if p["rank"] is not None}
    assert sorted(ranks) == [0, 1] and ranks[1]["pid"] == process["pid"]
    assert ranks[0]["allowed"] == ["cuda:0"] and ranks[1]["allowed"] == ["cuda:1"]  # auto: cuda:$LOCAL_RANK
    assert report["allowed"] == ["cuda:0", "cuda:1"]
    assert result.stderr.count("devlint: 1 leak site") == 1  # one summary for the job
    assert "train.py:10  DL008  rank 1: 1 call, 0 B on cuda:0" in result.stderr
    if devlint_outside:
        assert result.returncode == 1  # leaks
        launcher = [p for p in report["processes"] if p["rank"] is None]
        assert len(launcher) == 1 and launcher[0]["allowed"] == ["cpu"]  # the launcher itself may use no GPU


def test_a_crashing_rank_leaves_its_leaks_in_the_report(tmp_path):
    result, report = run_job(tmp_path, devlint_outside=False, CRASH="1")
    [leak] = report["leaks"]
    assert (leak["line"], leak["processes"][0]["rank"]) == (10, 1)
    assert "rank 1 crashed" in result.stderr
