"""Leak records, their aggregation by site, and the report file.

A leak site is (code, file, line, device): every request judged a leak at the same
site adds to one record (count, bytes), so a loop that leaks a million times is one
line in the report. The report is JSON (schema below); `devlint check --runtime-report`
and the pytest plugin read it.

    {"version": 1,
     "command": "python train.py --gpu 1",         # what ran, or null for a trace()
     "allowed": ["cuda:1"],                        # "cpu" when no GPU was allowed; a job: every process's
     "leaks": [{"code", "message", "filename" (absolute), "line" (1-based), "function", "device",
                "kind": "allocation" | "context", "count", "bytes",
                "origin": "path:line in function" | null, "stack": ["path:line in function", ...],
                "suggestion", "created_context", "source_line",
                "option": {"call", "keyword", "value"} | null,   # the API's own device option, when the line called a known entry point
                "processes": [{"pid", "rank", "local_rank", "host", "count", "bytes"}]}],
     "gpus": [{"device": "cuda:0", "physical": 0 | null, "allowed", "context",
               "reserved": bytes in torch's allocator, "memory": NVML bytes of that process | null,
               "pid", "rank", "local_rank", "host"}],
     "notes": ["what could not be measured, and why"],
     "exercised": [{"filename", "line", "count"}],     # user lines judged without a leak
     "processes": [{"pid", "rank", "local_rank", "host", "parent", "allowed", "finished"}]}

`processes` in a leak: every process that leaked at the site, with its share of the count
and bytes; `rank` and `local_rank` come from torchrun's RANK and LOCAL_RANK and are null
outside a distributed job. The top-level `processes` lists every traced process of the
job (the one `devlint run` started, its Python children, every torchrun rank); `finished`
is false for one that was killed or still running when the report was written (what it
recorded until then is in the report). Several reports join into one with
`devlint report merge` (devlint/reports.py).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

REPORT_VERSION = 1


@dataclass
class Leak:
    code: str
    message: str
    filename: str
    line: int
    function: str
    device: str
    kind: str
    suggestion: str
    origin: str | None = None
    stack: tuple[str, ...] = ()
    count: int = 0
    bytes: int = 0
    created_context: bool = False  # a call at this site created the CUDA context on `device`
    source_line: str | None = None  # the site's line as it read when the leak happened
    option: dict | None = None  # the called API's own device option: {"call", "keyword", "value"} (entry_points.py)

    @property
    def key(self) -> tuple:
        return (self.code, self.filename, self.line, self.device)

    @property
    def full_message(self) -> str:
        if self.created_context:
            return f"{self.message}; this created the CUDA context on {self.device} (~0.5 GiB)"
        return self.message

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "message": self.full_message,
            "filename": self.filename,
            "line": self.line,
            "function": self.function,
            "device": self.device,
            "kind": self.kind,
            "count": self.count,
            "bytes": self.bytes,
            "origin": self.origin,
            "stack": list(self.stack),
            "suggestion": self.suggestion,
            "created_context": self.created_context,
            "source_line": self.source_line,
            "option": self.option,
        }


class DeviceLeakError(Exception):
    """Raised in strict mode at the first leaking request, before the call runs.

    Not a RuntimeError: code that catches CUDA's RuntimeErrors (out of memory, no
    device) must not swallow it."""

    def __init__(self, message: str, leak: Leak | None = None):
        super().__init__(message)
        self.leak = leak

    @classmethod
    def for_leak(cls, leak: Leak, allowed: list[str]) -> "DeviceLeakError":
        where = f"{leak.filename}:{leak.line}"
        return cls(f"{leak.code} at {where}: {leak.message} (this run allows {', '.join(allowed)}). Fix: {leak.suggestion}", leak)

    def __reduce__(self):  # picklable across processes (pytest-xdist); the record stays behind
        return (type(self), (str(self),))


@dataclass(frozen=True)
class Snapshot:
    """Counts per site at one moment, to report only what happened after it."""

    totals: dict = field(default_factory=dict)


class Recorder:
    """Leak records of one session, aggregated by site. Safe to use from several threads.

    `log`: where each change is streamed as it happens (a job's process log, job.py), so a
    process that is killed loses nothing it recorded."""

    def __init__(self, log=None) -> None:
        self.log = log
        self._leaks: dict[tuple, Leak] = {}
        self._exercised: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def exercise(self, filename: str, line: int) -> None:
        """Count a judged request at a user site that did not leak."""
        key = (filename, line)
        with self._lock:
            self._exercised[key] = self._exercised.get(key, 0) + 1

    def exercised(self) -> list[dict]:
        with self._lock:
            items = sorted(self._exercised.items())
        return [{"filename": f, "line": n, "count": c} for (f, n), c in items]

    def add(self, leak: Leak, count: int = 1) -> Leak:
        """Count `count` more requests at `leak`'s site; returns the site's record (a copy
        of `leak` the first time, so one leak can start the records of several sessions)."""
        key = leak.key
        with self._lock:
            record = self._leaks.get(key)
            first = record is None
            if first:
                record = self._leaks[key] = replace(leak)
            record.count += count
            if self.log is not None:
                self.log.counted(record, first=first)
            return record

    def update(self, record: Leak, nbytes: int, created_context: bool) -> None:
        with self._lock:
            news = created_context and not record.created_context
            record.bytes += nbytes
            record.created_context = record.created_context or created_context
            if self.log is not None and (nbytes or news):
                self.log.counted(record, first=news or record.count == 1)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot({key: (leak.count, leak.bytes) for key, leak in self._leaks.items()})

    def leaks(self, since: Snapshot | None = None) -> list[Leak]:
        with self._lock:
            records = [replace(leak) for leak in self._leaks.values()]
        if since is not None:
            for leak in records:
                count, nbytes = since.totals.get(leak.key, (0, 0))
                leak.count -= count
                leak.bytes -= nbytes
            records = [leak for leak in records if leak.count > 0]
        return sorted(records, key=lambda leak: (leak.filename, leak.line, leak.code, leak.device))

    def reset(self) -> None:
        with self._lock:
            self._leaks.clear()
            self._exercised.clear()


def build(command: str | None, allowed: list[str], leaks: list[Leak], gpus: list, notes: list[str], exercised: list[dict] = (), process: dict | None = None) -> dict:
    """The report of one process; `process`: who it is (job.identity()), stamped on its
    leaks' `processes` and its GPU rows."""
    process = process or {"pid": None, "rank": None, "local_rank": None, "host": None}
    return {
        "version": REPORT_VERSION,
        "command": command,
        "allowed": allowed,
        "leaks": [{**leak.to_json(), "processes": [{**process, "count": leak.count, "bytes": leak.bytes}]} for leak in leaks],
        "gpus": [{**gpu.to_json(), **process} for gpu in gpus],
        "notes": notes,
        "exercised": list(exercised),
        "processes": [{**process, "parent": None, "allowed": allowed, "finished": True}],
    }


def check_writable(path: str | os.PathLike) -> None:
    """Raise OSError now if the report cannot be written to `path`, rather than after the run."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    os.unlink(probe)


def write(report: dict, path: str | os.PathLike) -> None:
    """Write atomically: a crash while writing never leaves half a report behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
