"""`devlint run` under `accelerate launch` and DeepSpeed's launcher, both ways around, on the
CPU (gloo, two ranks): one report that names each rank, as under torchrun.

DeepSpeed is not installable here; `deepspeed` below is a launcher of our own that does what
deepspeed/launcher/launch.py (0.19) does for each local rank: set MASTER_ADDR, MASTER_PORT,
WORLD_SIZE, LOCAL_SIZE, CROSS_RANK, RANK and LOCAL_RANK, and start `python -u SCRIPT
--local_rank=N` (or `python -u -m MODULE ...` with `--module`), then wait for every rank.
"""

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest
from rt_helpers import repo_environment
from test_torchrun import TRAIN

DEEPSPEED_LIKE = """
import os
import subprocess
import sys

module = sys.argv[1] == "--module"
target, *args = sys.argv[2:] if module else sys.argv[1:]
ranks = 2
environment = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["TEST_PORT"], WORLD_SIZE=str(ranks), LOCAL_SIZE=str(ranks), CROSS_RANK="0", CROSS_SIZE="1")
processes = []
for rank in range(ranks):
    environment.update(RANK=str(rank), LOCAL_RANK=str(rank))
    command = [sys.executable, "-u", *(["-m"] if module else []), target, *args, f"--local_rank={rank}"]
    processes.append(subprocess.Popen(command, env=dict(environment)))
sys.exit(max(process.wait() for process in processes))
"""

DEVLINT = ["-m", "devlint", "run", "--device", "auto"]


def _free_port() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def _check(result, report):
    assert result.returncode != 0, result.stderr
    [leak] = report["leaks"]
    assert (leak["code"], leak["line"], leak["device"]) == ("DL008", 10, "cuda:0")
    assert [(p["rank"], p["local_rank"]) for p in leak["processes"]] == [(1, 1)]
    ranks = sorted(p["rank"] for p in report["processes"] if p["rank"] is not None)
    assert ranks == [0, 1]
    assert "rank 1: 1 call" in result.stderr
    assert result.stderr.count("devlint: 1 leak site") == 1  # one summary for the job


@pytest.mark.parametrize("devlint_outside", [False, True], ids=["deepspeed -> devlint", "devlint -> deepspeed"])
def test_deepspeeds_launcher_names_each_rank(tmp_path, devlint_outside):
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    launcher = tmp_path / "deepspeed"  # named as the real launcher's script is
    launcher.write_text(textwrap.dedent(DEEPSPEED_LIKE))
    report = tmp_path / "report.json"
    if devlint_outside:
        command = [sys.executable, *DEVLINT, "--report", str(report), str(launcher), "train.py"]
    else:
        command = [sys.executable, str(launcher), "--module", "devlint", "run", "--device", "auto", "--report", str(report), "train.py"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=repo_environment(TEST_PORT=_free_port()), timeout=180)
    assert report.is_file(), result.stderr
    _check(result, json.loads(report.read_text()))


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None, reason="needs accelerate (pip install accelerate)")
@pytest.mark.parametrize("devlint_outside", [False, True], ids=["accelerate -> devlint", "devlint -> accelerate"])
def test_accelerate_launch_names_each_rank(tmp_path, devlint_outside):
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    report = tmp_path / "report.json"
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", _free_port()]
    if devlint_outside:
        command = [sys.executable, *DEVLINT, "--report", str(report), *accelerate[1:], "train.py"]
    else:
        command = [*accelerate, "-m", "devlint", "run", "--device", "auto", "--report", str(report), "train.py"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=repo_environment(), timeout=300)
    assert report.is_file(), result.stderr
    _check(result, json.loads(report.read_text()))
