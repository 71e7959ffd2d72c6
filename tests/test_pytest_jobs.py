"""A test's job: what its processes wrote, read per phase (a site fails the test when its
count grew), the environment and patches undone when the test ends, one more bounded read
at the session's end. Process logs are written here directly."""

import os
from types import SimpleNamespace

from devlint import pytest_jobs
from devlint.runtime import children
from devlint.runtime.job import ENV, Job, ProcessLog
from devlint.runtime.report import Leak, Recorder

TRACER = SimpleNamespace(allowed=SimpleNamespace(labels=["cuda:1"]))  # all a TestJob asks of the tracer


def _leak(code="DL001", line=3):
    return Leak(code, "`.cuda()` uses the current device, cuda:0", "/p/test_x.py", line, "f", "cuda:0", "allocation", "use `.to('cuda:1')`")


def _child(job, pid, rank=None):
    """The log a child process of `job` would write, and its recorder."""
    header = {"pid": pid, "rank": rank, "local_rank": rank, "host": "node-a", "parent": os.getpid(), "allowed": ["cuda:1"], "command": "python child.py"}
    log = ProcessLog(job.directory, header)
    return log, Recorder(log)


def test_a_site_fails_the_phase_its_count_grew_in(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    session = pytest_jobs.SessionJobs({"device": ["cuda:1"], "exercised": False})
    job = session.follow("test_x.py::test_a", None, TRACER, frozenset({"DL008"}))
    try:
        assert Job.from_env() == Job(job.directory, os.getpid(), {"device": ["cuda:1"], "exercised": False})
        assert job.read() == []
        log, recorder = _child(job, 2**22 + 1)
        record = recorder.add(_leak())
        recorder.add(_leak(code="DL008", line=9))  # allowed by the test's marker
        [fresh] = job.read()
        assert (fresh["code"], fresh["count"], fresh["processes"]) == ("DL001", 1, [{"pid": 2**22 + 1, "rank": None, "local_rank": None, "host": "node-a", "count": 1, "bytes": 0}])
        recorder.update(record, 64, False)  # bytes of a call already charged: totals only
        assert job.read() == [] and job.report["leaks"][0]["bytes"] == 64
        recorder.add(_leak())
        log.finish(None)
        [again] = job.read(wait=True)
        assert (again["count"], again["processes"][0]["count"]) == (1, 1)  # only the new call
        assert [leak["count"] for leak in job.report["leaks"]] == [2] and job.notes == []
    finally:
        job.stop_following()
    assert ENV not in os.environ and not children._tracers and not children._patches
    session.close()
    assert not os.path.exists(session.root)


def test_a_process_a_marker_names_devices_for_gets_them(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    session = pytest_jobs.SessionJobs({"device": ["cuda:1"], "exercised": True})
    job = session.follow("test_x.py::test_b", ["cuda:0"], TRACER, frozenset())
    try:
        assert Job.from_env().options == {"device": ["cuda:0"], "exercised": True}
    finally:
        job.stop_following()
    session.close()


def test_the_session_end_reads_once_more_and_then_removes_everything(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("DEVLINT_JOB_WAIT", "0.2")  # the bounded wait for the process still running
    session = pytest_jobs.SessionJobs({"device": ["cuda:1"]})
    running = session.follow("test_x.py::test_c", None, TRACER, frozenset())
    gone = session.follow("test_x.py::test_d", None, TRACER, frozenset())
    _, recorder = _child(running, os.getpid())  # alive, never finishes its log
    recorder.add(_leak())
    _, recorder = _child(gone, 2**22 + 2)  # no such process: it died
    recorder.add(_leak(line=5))
    try:
        settled = {job.nodeid: late for job, late in session.settle()}
        assert [leak["line"] for leak in settled["test_x.py::test_d"]] == [5]
        assert any("ended without finishing (killed or crashed)" in note for note in gone.notes)
        assert running.notes == [f"process {os.getpid()} was still running after 0.2 s: the report has what it recorded until then"]
        assert ENV not in os.environ and not children._tracers
    finally:
        session.close()
    assert not os.path.exists(session.root)
