"""`devlint run` follows the program into its Python children, end to end, in a subprocess.

Each child asks for a GPU this run may not use: the request is judged (and recorded in
the child's log) before it fails on a CPU build, so its leak must reach the one report.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from rt_helpers import ROOT, repo_environment

from devlint.runtime import children
from devlint.runtime.job import ENV, Job


def devlint_run(tmp_path, source, *options, env=None):
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "devlint", "run", "--device", "cuda:1", "--report", str(report), *options, "program.py"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=repo_environment(**(env or {})), timeout=120)
    assert report.is_file(), result.stderr
    return result, json.loads(report.read_text())


def by_line(report) -> dict:
    return {leak["line"]: leak for leak in report["leaks"]}


KINDS = """
import multiprocessing as mp
import os
import subprocess
import sys

import torch
import torch.multiprocessing


def attempt(call):
    try:
        call()
    except (AssertionError, RuntimeError):
        pass


def in_spawn():
    attempt(lambda: torch.ones(1).cuda())  # line 19


def in_fork():
    attempt(lambda: torch.zeros(1, device="cuda"))  # line 23


def in_forkserver():
    attempt(lambda: torch.zeros(1, device="cuda:0"))  # line 27


def in_torch_spawn(index):
    attempt(lambda: torch.ones(1).to("cuda"))  # line 31


if __name__ == "__main__":
    for method, target in (("spawn", in_spawn), ("fork", in_fork), ("forkserver", in_forkserver)):
        child = mp.get_context(method).Process(target=target)
        child.start()
        child.join()
    torch.multiprocessing.spawn(in_torch_spawn, nprocs=1)
    subprocess.run([sys.executable, "child.py"], check=True)
    print("parent", os.getpid())
"""

SUBPROCESS_CHILD = """
import torch

try:
    torch.empty(2, device="cuda:2")  # line 5
except (AssertionError, RuntimeError):
    pass
"""


def test_every_kind_of_child_reports_to_the_one_report(tmp_path):
    (tmp_path / "child.py").write_text(textwrap.dedent(SUBPROCESS_CHILD))
    result, report = devlint_run(tmp_path, KINDS)
    assert result.returncode == 1, result.stderr
    parent = int(result.stdout.split()[-1])
    leaks = by_line(report)
    assert {line: leaks[line]["code"] for line in (19, 23, 27, 31)} == {19: "DL001", 23: "DL002", 27: "DL008", 31: "DL002"}
    child_leak = next(leak for leak in report["leaks"] if leak["filename"] == str(tmp_path / "child.py"))
    assert (child_leak["code"], child_leak["line"]) == ("DL103", 5)
    pids = set()
    for leak in report["leaks"]:
        [process] = leak["processes"]
        assert process["pid"] != parent and process["rank"] is None and process["local_rank"] is None
        assert (process["count"], process["bytes"]) == (1, 0) and process["host"]
        pids.add(process["pid"])
    assert len(pids) == 5  # one process each
    traced = {p["pid"]: p for p in report["processes"]}
    assert parent in traced and pids <= set(traced) and all(p["finished"] for p in traced.values())
    assert all(traced[pid]["allowed"] == ["cuda:1"] for pid in pids)  # the parent's devices, in every child
    assert "in 6 processes" in result.stderr or "in 7 processes" in result.stderr  # (a forkserver server may register too)
    assert "program.py:19  DL001  1 process (pid " in result.stderr


DATALOADER = """
import sys

import torch
from torch.utils.data import DataLoader, Dataset


class Touching(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        try:
            torch.ones(1).cuda()  # line 14
        except (AssertionError, RuntimeError):
            pass
        return index


if __name__ == "__main__":
    for method in ("spawn", "fork"):
        assert sorted(int(x) for x in DataLoader(Touching(), num_workers=2, multiprocessing_context=method)) == [0, 1, 2, 3]
"""


def test_dataloader_workers_are_traced_under_spawn_and_fork(tmp_path):
    result, report = devlint_run(tmp_path, DATALOADER)
    assert result.returncode == 1, result.stderr
    [leak] = report["leaks"]
    assert (leak["code"], leak["line"], leak["count"]) == ("DL001", 14, 8)
    assert len(leak["processes"]) == 4 and sum(p["count"] for p in leak["processes"]) == 8  # two workers per loader
    assert "program.py:14  DL001  4 processes (pid " in result.stderr


KILLED = """
import multiprocessing as mp
import os
import signal

import torch


def leak_then_die():
    try:
        torch.zeros(1, device="cuda")  # line 11
    except (AssertionError, RuntimeError):
        pass
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    child = mp.get_context("spawn").Process(target=leak_then_die)
    child.start()
    child.join()
    print(child.exitcode)
    try:
        torch.ones(1).cuda()  # line 23
    except (AssertionError, RuntimeError):
        pass
"""


def test_a_killed_child_keeps_what_it_recorded(tmp_path):
    result, report = devlint_run(tmp_path, KILLED)
    assert result.stdout.strip() == str(-signal.SIGKILL)
    leaks = by_line(report)
    assert (leaks[11]["code"], leaks[11]["count"]) == ("DL002", 1)
    [killed] = [p for p in report["processes"] if not p["finished"]]
    assert leaks[11]["processes"][0]["pid"] == killed["pid"]
    assert any("ended without finishing (killed or crashed)" in note for note in report["notes"])
    assert not any(name.startswith("devlint-job-") for name in os.listdir(tmp_path))


def test_no_children_traces_only_the_program_itself(tmp_path):
    result, report = devlint_run(tmp_path, KILLED, "--no-children")
    assert [leak["line"] for leak in report["leaks"]] == [23]
    assert len(report["processes"]) == 1 and report["leaks"][0]["processes"][0]["pid"] == report["processes"][0]["pid"]


HANGING = """
import subprocess
import sys

child = subprocess.Popen([sys.executable, "-c", "import time, torch\\ntry:\\n    torch.ones(1).cuda()\\nexcept Exception:\\n    pass\\nprint('leaked', flush=True)\\ntime.sleep(60)"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
assert child.stdout.readline() == "leaked\\n"
print(child.pid)
"""


def test_a_child_that_hangs_does_not_hang_the_report(tmp_path):
    started = time.monotonic()
    result, report = devlint_run(tmp_path, HANGING, env={"DEVLINT_JOB_WAIT": "1"})
    child = int(result.stdout.split()[-1])
    try:
        assert time.monotonic() - started < 30
        [leak] = report["leaks"]
        assert leak["code"] == "DL001" and leak["processes"][0]["pid"] == child
        assert any(f"process {child} was still running after 1 s" in note for note in report["notes"])
        [kept] = [note.split(" are kept in ")[1].split(" ")[0] for note in report["notes"] if " are kept in " in note]
    finally:
        os.kill(child, signal.SIGKILL)
    shutil.rmtree(kept)  # kept for a later `devlint report merge`, as the note says


RESTORED = """
import multiprocessing as mp
import os
import threading

import torch


def check(queue):
    import multiprocessing.process

    from devlint.runtime import children
    from devlint.runtime.hub import HUB

    assert HUB.sessions, "the child was not traced"
    children.finish()
    patched = [torch.cuda.synchronize, torch.Tensor.cuda, threading.Thread.start, torch.load, os._exit, multiprocessing.process.BaseProcess._bootstrap, torch.distributed.barrier]
    queue.put((not HUB.sessions, torch._C._len_torch_function_stack(), [ours(f) for f in patched]))


def ours(function):  # one of devlint's wrappers?
    return "devlint" in getattr(getattr(function, "__code__", None), "co_filename", "")


if __name__ == "__main__":
    for method in ("spawn", "fork"):
        context = mp.get_context(method)
        queue = context.Queue()
        child = context.Process(target=check, args=(queue,))
        child.start()
        print(method, queue.get())
        child.join()
"""


def test_every_patch_is_restored_in_children(tmp_path):
    result, _ = devlint_run(tmp_path, RESTORED)
    assert "ours" in RESTORED and "devlint" not in str(tmp_path)  # the probe would see itself otherwise
    assert result.stdout.splitlines() == ["spawn (True, 0, [False, False, False, False, False, False, False])", "fork (True, 0, [False, False, False, False, False, False, False])"], result.stderr


def test_the_sitecustomize_hook_chains_to_the_one_it_hides(tmp_path):
    """For installs without the wheel's .pth: devlint's sitecustomize runs the next one on
    the path, then starts the hook; with no job in the environment it does nothing."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import sys\nsys.stderr.write('other sitecustomize ran\\n')\n")
    probe = "import sys; print('devlint.runtime.startup' in sys.modules, 'devlint.runtime.children' in sys.modules, 'torch' in sys.modules)"
    path = os.pathsep.join([children.SITE_DIR, str(other), str(ROOT)])
    job = Job(str(tmp_path), owner=1, options={"device": ["cuda:1"]})
    for environment, expected in (({ENV: job.to_env()}, "True True False"), ({}, "False False False")):
        env = repo_environment(PYTHONPATH=path)
        env.pop(ENV, None)
        env.update(environment)
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
        assert result.stdout.split() == expected.split(), result.stderr
        assert "other sitecustomize ran" in result.stderr


def test_the_wheel_installs_the_startup_pth():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"devlint/_site/devlint_startup.pth" = "devlint_startup.pth"' in pyproject
    line = (ROOT / "devlint" / "_site" / children.PTH_NAME).read_text()
    assert line.startswith("import os; ") and '"DEVLINT_JOB" in os.environ and' in line  # inert without a job


THROUGH_THE_CLASS_IN_CHILDREN = """
import multiprocessing as mp
import subprocess
import sys

import torch


def in_spawn():
    try:
        torch.Tensor.to(torch.ones(1), "cuda")  # line 11: only a thorough tracer sees it
    except (AssertionError, RuntimeError):
        pass


if __name__ == "__main__":
    child = mp.get_context("spawn").Process(target=in_spawn)
    child.start()
    child.join()
"""


@pytest.mark.parametrize("options, lines", [([], []), (["--thorough"], [11])], ids=["default", "thorough"])
def test_the_tracing_mode_travels_to_children(tmp_path, options, lines):
    _, report = devlint_run(tmp_path, THROUGH_THE_CLASS_IN_CHILDREN, *options)
    assert sorted(by_line(report)) == lines
