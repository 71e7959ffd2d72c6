"""The child processes of each test, for the pytest plugin: one job (runtime/job.py) per test.

While a test runs (its fixtures' setup and teardown included), DEVLINT_JOB names a job
directory of the test's own, so every Python process the test starts (multiprocessing
children, DataLoader workers, `subprocess` Pythons, torchrun ranks) streams its leaks
there, judged against the test's devices, and forked children carry on with the tracer
that judges the test. A leak there belongs to the test that started the process.

The plugin reads a test's directory at the end of each phase of the test: a leak site
whose count grew since the last read fails it (bytes that arrive later at a site already
charged only update the totals). After the teardown it waits a bounded time (`TEST_WAIT`,
or `DEVLINT_JOB_WAIT` as for `devlint run`) for the processes still running: a test's
children have normally finished with it, and waiting longer would only cost time where
workers idle on (a DataLoader that a failed test's traceback keeps alive). A process that
outlives its test (a server that a module fixture started) keeps writing to the
directory, which is read once more at the session's end, after the same bounded wait
where a process still runs: what it recorded after its test ended is reported then, as
late. Then the directories go; a process still running by then has a note in the report
and its later lines nowhere (its log is let go, its program goes on).

Imports no torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from devlint import reports
from devlint.runtime import children
from devlint.runtime import job as job_module

TEST_WAIT = 1.0  # seconds, after a test's teardown, for the processes it started that still run


class TestJob:
    """The processes one test started, followed through a job directory of its own."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def __init__(self, directory: str, nodeid: str, options: dict, tracer, allow: frozenset) -> None:
        """`options`: Tracer(**options) in each child; `tracer`: the one judging this test here,
        which forked children carry on with; `allow`: codes the test allows."""
        self.nodeid = nodeid
        self.allow = allow
        self.directory = directory
        header = {**job_module.identity(), "parent": None, "allowed": tracer.allowed.labels, "command": nodeid}
        self._log = job_module.ProcessLog(directory, header)  # never written: forked children start theirs from it
        self.report = reports.join([])  # its processes' leaks (totals), processes, GPUs, exercised lines, as last read
        self.notes: list[str] = []  # what did not finish, as of the last read that waited
        self._charged: dict[tuple, tuple[int, int]] = {}  # (site, host, pid) -> (count, bytes) already charged
        self._undo = children.export(job_module.Job(directory, os.getpid(), options))
        children.adopt(tracer, self._log)

    def stop_following(self) -> None:
        """The test is over: processes started from now on are not its own. Safe to call twice."""
        if self._undo is not None:
            self._undo()
            self._undo = None
            children.release(self._log)

    def read(self, wait: float | None = None) -> list[dict]:
        """Read the directory (with `wait`, once every process there finished or `wait`
        seconds passed, and note what did not finish) and return the leak sites whose count
        grew since the last read, each with the processes that added to it and their share."""
        if wait is None:
            parts = job_module.read_all(self.directory)
        else:
            parts, self.notes = job_module.collect(self.directory, wait=wait)
        joined = reports.join(parts)
        joined["leaks"] = [leak for leak in joined["leaks"] + reports.contexts_on_other_ranks(joined) if leak["code"] not in self.allow]
        self.report = joined
        fresh = []
        for leak in joined["leaks"]:
            grown = []
            for process in leak["processes"]:
                key = (*(leak[name] for name in reports.SITE), process["host"], process["pid"])
                count, nbytes = self._charged.get(key, (0, 0))
                if process["count"] > count:
                    grown.append({**process, "count": process["count"] - count, "bytes": max(process["bytes"] - nbytes, 0)})
                    self._charged[key] = (process["count"], process["bytes"])
            if grown:
                fresh.append({**leak, "count": sum(p["count"] for p in grown), "bytes": sum(p["bytes"] for p in grown), "processes": grown})
        return fresh

    def running(self) -> list[int]:
        """Pids of the processes that wrote here and are still running without having finished."""
        return [p["pid"] for p in self.report["processes"] if not p["finished"] and job_module.alive(p["pid"])]


class SessionJobs:
    """Every test's job in this pytest process, in one directory that goes at the end."""

    def __init__(self, options: dict) -> None:
        """`options`: the session's tracer settings; a test's marker may change its devices.
        Raises OSError when no directory can be made."""
        self.options = options
        self.root = tempfile.mkdtemp(prefix="devlint-pytest-")
        self.jobs: list[TestJob] = []
        self.test_wait = job_module.wait_limit(TEST_WAIT)

    def follow(self, nodeid: str, devices: list[str] | None, tracer, allow: frozenset) -> TestJob:
        """Start following the processes of the test `nodeid` (until `stop_following`)."""
        options = self.options if devices is None else {**self.options, "device": devices}
        directory = tempfile.mkdtemp(prefix=f"test{len(self.jobs)}-", dir=self.root)
        job = TestJob(directory, nodeid, options, tracer, allow)
        self.jobs.append(job)
        return job

    def settle(self) -> list[tuple[TestJob, list[dict]]]:
        """Read every test's directory once more, waiting where a process still runs (the
        same bounded wait as after a test): each test's job with what its processes
        recorded after the test had ended."""
        for job in reversed(self.jobs):  # each undoes the environment the one before it saw
            job.stop_following()
        return [(job, job.read(wait=self.test_wait)) for job in self.jobs]

    def close(self) -> None:
        """Remove every test's directory (a process still running lets its log go)."""
        shutil.rmtree(self.root, ignore_errors=True)
