"""A job: every traced process of one `devlint run`, writing to one directory.

Each process appends JSON lines to its own log in the job directory as things happen: who
it is, each new leak site as soon as it is seen, the site's totals as they grow, and at
the end its GPUs. A process that crashes or is killed keeps everything up to its last
line (totals of repeated leaks are written at most every `FLUSH_SECONDS`; a new site,
and the call that created a context, at once). One writer per file, one `write()` per
line, so concurrent processes never corrupt each other; a line cut short by a kill is
skipped when reading.

The owner (the `devlint run` that started the job, or local rank 0 when torchrun starts
`devlint run` in every rank) waits for the others to finish, a bounded time, then joins
the logs into the job's report (devlint/reports.py).

The job is passed to child processes in one environment variable, DEVLINT_JOB, holding
the directory, the owner's pid and the tracer's settings as given to `Tracer(**options)`:
whatever settings the tracer gains travel to children without changes here.

Imports no torch: the start-up hook of every child process reads this module.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ENV = "DEVLINT_JOB"
FLUSH_SECONDS = 0.2
WAIT_ENV = "DEVLINT_JOB_WAIT"  # seconds the owner waits for processes still running
CHILD_WAIT = 5.0  # for the owner's own descendants, which have normally finished with it
RANK_WAIT = 120.0  # for sibling ranks, which may finish later than local rank 0


@dataclass(frozen=True)
class Job:
    directory: str
    owner: int  # pid of the process that joins the logs into the report
    options: dict = field(default_factory=dict)  # Tracer(**options) in every process

    def to_env(self) -> str:
        return json.dumps({"directory": self.directory, "owner": self.owner, "options": self.options})

    @classmethod
    def from_env(cls, environ=os.environ) -> "Job | None":
        raw = environ.get(ENV)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(str(data["directory"]), int(data["owner"]), dict(data.get("options") or {}))
        except (ValueError, KeyError, TypeError):
            return None


def number(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def identity(environ=os.environ) -> dict:
    """Who this process is in the job: rank and local rank under torchrun, else null."""
    return {"pid": os.getpid(), "rank": number(environ.get("RANK")), "local_rank": number(environ.get("LOCAL_RANK")), "host": socket.gethostname()}


def launched_rank(environ=os.environ) -> bool:
    """Is this process one rank that a launcher started on this node? torchrun (and
    `accelerate launch`, which runs torchrun's agent) marks its workers with
    TORCHELASTIC_RUN_ID; DeepSpeed's launcher (deepspeed/launcher/launch.py) sets RANK,
    LOCAL_RANK, WORLD_SIZE and LOCAL_SIZE in each rank's environment and no agent id."""
    if number(environ.get("LOCAL_RANK")) is None:
        return False
    if "TORCHELASTIC_RUN_ID" in environ:
        return True
    return all(number(environ.get(name)) is not None for name in ("RANK", "WORLD_SIZE", "LOCAL_SIZE"))


def local_ranks(environ=os.environ) -> int:
    """How many ranks the launcher started on this node: torchrun's LOCAL_WORLD_SIZE, DeepSpeed's LOCAL_SIZE."""
    return number(environ.get("LOCAL_WORLD_SIZE")) or number(environ.get("LOCAL_SIZE")) or 0


def rank_directory(environ=os.environ) -> str:
    """The job directory every local rank of one launcher agrees on without talking:
    named after the agent (their common parent) and its start time, so a new job never
    meets an old one's logs even when a pid is reused."""
    agent = os.getppid()
    try:
        started = Path(f"/proc/{agent}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = environ.get("TORCHELASTIC_RUN_ID", "run")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"devlint-job-{uid}-{agent}-{started}")


class ProcessLog:
    """The sink of one process's Recorder: its log in the job directory."""

    def __init__(self, directory: str, header: dict) -> None:
        self.directory = directory
        self.header = header  # identity plus parent, allowed devices, command
        self.pid = header["pid"]
        self.path = os.path.join(directory, f"{header['host']}-{self.pid}.jsonl")
        self._fd: int | None = None
        self._written: set[tuple] = set()  # sites whose full entry is in the log
        self._dirty: dict[tuple, object] = {}  # sites whose totals moved since the last flush
        self._flushed = time.monotonic()
        self._lock = threading.Lock()
        self.finished = False

    def _write(self, entry: dict) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, (json.dumps({"process": self.header}) + "\n").encode())
        os.write(self._fd, (json.dumps(entry) + "\n").encode())

    def register(self) -> None:
        """Write the header now (ranks do, so the owner knows to wait for them)."""
        with self._lock:
            if self._fd is None:
                self._write({"started": time.time()})

    def counted(self, leak, first: bool) -> None:
        """A site's count, bytes or context changed (called under the recorder's lock, inside
        the program's own call). A log that can no longer be written (the owner gave up on
        this process and removed the job directory) is let go: the call must not fail for it."""
        with self._lock:
            if self.finished:
                return
            try:
                key = leak.key
                if key not in self._written:
                    self._written.add(key)
                    self._write({"leak": leak.to_json()})
                    return
                self._dirty[key] = leak
                if first or time.monotonic() - self._flushed >= FLUSH_SECONDS:
                    self._flush()
            except OSError:
                self.abandon()

    def _flush(self) -> None:
        for leak in self._dirty.values():
            self._write({"totals": list(leak.key), "count": leak.count, "bytes": leak.bytes, "created_context": leak.created_context, "message": leak.full_message})
        self._dirty.clear()
        self._flushed = time.monotonic()

    def finish(self, report: dict | None) -> None:
        """The last line: totals, and this process's GPUs, notes and exercised lines."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            self._flush()
            end = {key: report[key] for key in ("gpus", "notes", "exercised")} if report else {}
            self._write({"end": end})
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """In a forked child: this log is the parent's; let go of it without writing."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self.finished = True


def read_log(path: str) -> dict | None:
    """A process log as a one-process report (the schema of report.py), or None if it has no header."""
    header, leaks, end = None, {}, None
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError:
        return None
    for raw in lines:
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # cut short by a kill
        if "process" in entry:
            header = entry["process"]
        elif "leak" in entry:
            leak = entry["leak"]
            leaks[tuple(leak[k] for k in ("code", "filename", "line", "device"))] = leak
        elif "totals" in entry:
            leak = leaks.get(tuple(entry["totals"]))
            if leak is not None:
                leak.update(count=entry["count"], bytes=entry["bytes"], created_context=entry["created_context"], message=entry["message"])
        elif "end" in entry:
            end = entry["end"]
    if header is None:
        return None
    process = {k: header.get(k) for k in ("pid", "rank", "local_rank", "host")}
    gpus = (end or {}).get("gpus", [])
    return {
        "version": 1,
        "command": header.get("command"),
        "allowed": header.get("allowed", []),
        "leaks": [{**leak, "processes": [{**process, "count": leak["count"], "bytes": leak["bytes"]}]} for leak in leaks.values()],
        "gpus": [{**gpu, **process} for gpu in gpus],
        "notes": (end or {}).get("notes", []),
        "exercised": (end or {}).get("exercised", []),
        "processes": [{**process, "parent": header.get("parent"), "allowed": header.get("allowed", []), "finished": end is not None}],
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_limit(default: float) -> float:
    """How long an owner waits for processes still running: DEVLINT_JOB_WAIT, else `default`."""
    try:
        return float(os.environ[WAIT_ENV])
    except (KeyError, ValueError):
        return default


def collect(directory: str, *, ranks: int = 0, wait: float = CHILD_WAIT) -> tuple[list[dict], list[str]]:
    """Every process log in `directory` as a report, once each process has finished or
    died, waiting at most `wait` seconds and, with `ranks`, until that many distinct local
    ranks have registered. Returns (reports, notes)."""
    deadline = time.monotonic() + wait
    while True:
        parts = read_all(directory)
        running = [p["processes"][0] for p in parts if not p["processes"][0]["finished"] and alive(p["processes"][0]["pid"])]
        registered = {p["processes"][0]["local_rank"] for p in parts if p["processes"][0]["local_rank"] is not None}
        missing = max(ranks - len(registered), 0)
        if (not running and not missing) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    notes = []
    for process in running:
        notes.append(f"process {process['pid']}{_rank_text(process)} was still running after {wait:g} s: the report has what it recorded until then")
    if missing:
        notes.append(f"{missing} of {ranks} local ranks never started devlint within {wait:g} s")
    for part in parts:
        process = part["processes"][0]
        if not process["finished"] and process not in running:
            notes.append(f"process {process['pid']}{_rank_text(process)} ended without finishing (killed or crashed): the report has what it recorded until then")
    return parts, notes


def read_all(directory: str) -> list[dict]:
    """Every process log in `directory` as it reads now, without waiting for anyone."""
    return [part for part in (read_log(os.path.join(directory, name)) for name in sorted(_logs(directory))) if part]


def _rank_text(process: dict) -> str:
    return f" (rank {process['rank']})" if process.get("rank") is not None else ""


def _logs(directory: str) -> list[str]:
    try:
        return [name for name in os.listdir(directory) if name.endswith(".jsonl")]
    except OSError:
        return []
