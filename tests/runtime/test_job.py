"""Process logs: streamed per leak, readable after a kill, joined by the owner."""

import json
import os

from devlint.runtime import job
from devlint.runtime.job import Job, ProcessLog
from devlint.runtime.report import Leak, Recorder


def _leak(line=3):
    return Leak("DL001", "`.cuda()` uses the current device, cuda:0", "/p/train.py", line, "main", "cuda:0", "allocation", "use `.to(device)`")


def _log(tmp_path, rank=None):
    header = {"pid": os.getpid(), "rank": rank, "local_rank": rank, "host": "node-a", "parent": 7, "allowed": ["cuda:1"], "command": "python train.py"}
    return ProcessLog(str(tmp_path), header)


def test_a_new_site_is_on_disk_at_once_and_totals_follow(tmp_path, monkeypatch):
    log = _log(tmp_path)
    recorder = Recorder(log)
    recorder.update(recorder.add(_leak()), 16, True)
    [part] = [job.read_log(log.path)]
    assert [(l["line"], l["count"], l["bytes"], l["created_context"]) for l in part["leaks"]] == [(3, 1, 16, True)]
    assert part["processes"] == [{"pid": os.getpid(), "rank": None, "local_rank": None, "host": "node-a", "parent": 7, "allowed": ["cuda:1"], "finished": False}]
    monkeypatch.setattr(job, "FLUSH_SECONDS", 3600)
    for _ in range(5):
        recorder.update(recorder.add(_leak()), 16, False)
    assert job.read_log(log.path)["leaks"][0]["count"] == 1  # repeats are written at most every FLUSH_SECONDS
    log.finish({"gpus": [], "notes": ["n"], "exercised": []})
    part = job.read_log(log.path)
    assert (part["leaks"][0]["count"], part["leaks"][0]["bytes"], part["notes"], part["processes"][0]["finished"]) == (6, 96, ["n"], True)


def test_a_line_cut_short_by_a_kill_is_skipped(tmp_path):
    log = _log(tmp_path, rank=1)
    recorder = Recorder(log)
    recorder.add(_leak())
    recorder.add(_leak(line=9))
    with open(log.path, "a") as out:
        out.write('{"leak": {"code": "DL0')
    part = job.read_log(log.path)
    assert [l["line"] for l in part["leaks"]] == [3, 9]
    assert part["leaks"][0]["processes"] == [{"pid": os.getpid(), "rank": 1, "local_rank": 1, "host": "node-a", "count": 1, "bytes": 0}]


def test_collect_notes_what_did_not_finish(tmp_path):
    finished = _log(tmp_path)
    Recorder(finished).add(_leak())
    finished.finish(None)
    dead = ProcessLog(str(tmp_path), {**finished.header, "pid": 2**22 + 12345})  # no such process
    Recorder(dead).add(_leak(line=5))
    parts, notes = job.collect(str(tmp_path), wait=0)
    assert sorted(p["processes"][0]["pid"] for p in parts) == sorted([os.getpid(), 2**22 + 12345])
    assert notes == [f"process {2**22 + 12345} ended without finishing (killed or crashed): the report has what it recorded until then"]
    _, notes = job.collect(str(tmp_path), ranks=2, wait=0)
    assert "2 of 2 local ranks never started devlint within 0 s" in notes


def test_the_job_travels_in_one_variable_with_every_tracer_setting():
    spec = Job("/tmp/j", 12, {"device": ["auto"], "strict": True, "exercised": False})
    assert Job.from_env({job.ENV: spec.to_env()}) == spec
    assert json.loads(spec.to_env())["options"] == {"device": ["auto"], "strict": True, "exercised": False}
    assert Job.from_env({job.ENV: "not json"}) is None and Job.from_env({}) is None


def test_ranks_and_torchrun_come_from_the_environment():
    assert job.identity({"RANK": "3", "LOCAL_RANK": "1"})["rank"] == 3
    assert job.identity({})["rank"] is None
    assert job.launched_rank({"TORCHELASTIC_RUN_ID": "x", "LOCAL_RANK": "0"})
    assert not job.launched_rank({"LOCAL_RANK": "0"})
    deepspeed = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_SIZE": "2", "CROSS_RANK": "1"}  # deepspeed/launcher/launch.py
    assert job.launched_rank(deepspeed) and job.local_ranks(deepspeed) == 2
    assert not job.launched_rank({**deepspeed, "LOCAL_SIZE": ""})


def test_a_log_whose_directory_is_gone_never_fails_the_program(tmp_path):
    """The owner removed the job directory (it gave up waiting) before this process
    recorded anything: its leaking calls must still run; its log is let go."""
    directory = tmp_path / "job"
    directory.mkdir()
    log = _log(directory)
    directory.rmdir()
    recorder = Recorder(log)
    recorder.add(_leak())
    recorder.add(_leak(line=9))
    assert log.finished and [leak.line for leak in recorder.leaks()] == [3, 9]  # still recorded in memory
