"""Following a traced program into its child processes (coverage.py's way).

- **New interpreters** (`subprocess` running Python, spawn and forkserver children,
  `torch.multiprocessing`, DataLoader workers under spawn, torchrun ranks) find the job
  in the environment (DEVLINT_JOB) and a start-up hook runs at interpreter start
  (startup.py, reached through the `.pth` file the wheel installs, or through
  devlint/_site/sitecustomize.py, which `export` puts first on PYTHONPATH when that
  `.pth` is not installed, as in a checkout on PYTHONPATH). The hook starts a tracer
  with the parent's settings when the program imports torch, so a child that never
  imports torch costs nothing.
- **Forked children** (fork start method, DataLoader workers under fork, `os.fork()`)
  inherit the running tracer; `os.register_at_fork` gives each its own log.
- **Exits that skip atexit**: multiprocessing children leave through `os._exit` after
  `BaseProcess._bootstrap`, so both are wrapped to finish the process's log first.

Every patch is undone when the process finishes its log (`finish`) or the owner stops.
Imports no torch until a tracer starts.
"""

from __future__ import annotations

import atexit
import functools
import os
import shlex
import site
import sys
from pathlib import Path

from devlint.runtime.job import ENV, Job, ProcessLog, identity

PTH_NAME = "devlint_startup.pth"
SITE_DIR = str(Path(__file__).resolve().parents[1] / "_site")

_tracers: list = []  # (tracer, log) running in this process for a job
_patches: list = []  # (owner, name, original)
_state = {"fork_hook": False, "owner_exit": None, "atexit": False}


def pth_installed() -> bool:
    """Is the wheel's start-up `.pth` in one of this interpreter's site directories?"""
    directories = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        directories.append(site.getusersitepackages())
    return any(os.path.isfile(os.path.join(d, PTH_NAME)) for d in directories)


def export(job: Job, environ=os.environ):
    """Put the job in the environment children inherit; returns a function that undoes it."""
    saved = {name: environ.get(name) for name in (ENV, "PYTHONPATH")}
    environ[ENV] = job.to_env()
    if not pth_installed():
        paths = [p for p in (environ.get("PYTHONPATH") or "").split(os.pathsep) if p and p != SITE_DIR]
        environ["PYTHONPATH"] = os.pathsep.join([SITE_DIR, *paths])

    def undo() -> None:
        for name, value in saved.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value

    return undo


def start(job: Job, parent: int | None):
    """A tracer for this process with the job's settings, streaming to its own log."""
    from devlint.runtime.tracer import Tracer

    log = ProcessLog(job.directory, _header(parent, []))
    try:
        tracer = Tracer(**job.options, log=log)
    except ValueError as exc:  # DeviceError: say so in the report instead of failing the program
        sys.stderr.write(f"devlint: process {os.getpid()} is not traced: {exc}\n")
        log.finish({"gpus": [], "notes": [f"process {os.getpid()} ({log.header['command']}) was not traced: {exc}"], "exercised": []})
        return None
    log.header["allowed"] = tracer.allowed.labels
    tracer.start()
    _tracers.append((tracer, log))
    arm()
    return tracer


def _header(parent: int | None, allowed: list[str]) -> dict:
    return {**identity(), "parent": parent, "allowed": allowed, "command": shlex.join([sys.executable, *sys.argv])}


def adopt(tracer, log: ProcessLog) -> None:
    """Follow the children of a tracer started elsewhere (`devlint run`'s own)."""
    _tracers.append((tracer, log))
    arm()


def release(log: ProcessLog | None = None) -> None:
    """The owner is done: forget its tracers here (only the one following `log`, when
    given: the pytest plugin follows one test at a time) and, once none is left, undo the patches."""
    pid = os.getpid()
    _tracers[:] = [(tracer, kept) for tracer, kept in _tracers if kept.pid != pid or (log is not None and kept is not log)]
    if not any(kept.pid == pid for _, kept in _tracers):
        disarm()


def arm(owner_exit=None) -> None:
    """Wrap the exits that skip atexit, and re-arm in forked children. `owner_exit(code)`:
    what `devlint run` does when the program itself calls `os._exit`."""
    if owner_exit is not None:
        _state["owner_exit"] = (os.getpid(), owner_exit)
    if not _state["fork_hook"] and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)  # cannot be undone: inert once nothing runs
        _state["fork_hook"] = True
    if _patches:
        return
    import multiprocessing.process

    _patch(multiprocessing.process.BaseProcess, "_bootstrap", _wrap_bootstrap)
    _patch(os, "_exit", _wrap_exit)


def _patch(owner, name: str, make) -> None:
    original = vars(owner)[name]
    setattr(owner, name, make(original))
    _patches.append((owner, name, original))


def disarm() -> None:
    while _patches:
        owner, name, original = _patches.pop()
        setattr(owner, name, original)
    _state["owner_exit"] = None


def _wrap_bootstrap(original):
    @functools.wraps(original)
    def _bootstrap(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        finally:
            finish()

    return _bootstrap


def _wrap_exit(original):
    @functools.wraps(original)
    def _exit(code):
        owner = _state["owner_exit"]
        try:
            if owner is not None and owner[0] == os.getpid():
                owner[1](code)
            else:
                finish()
        finally:
            original(code)

    return _exit


def _after_fork() -> None:
    """In a forked child: the tracers running in the parent go on here, each with a log of its own."""
    pid = os.getpid()
    for position, (tracer, log) in enumerate(_tracers):
        if log.pid == pid or log.finished:
            continue
        from devlint.runtime.report import Recorder

        log.abandon()
        child = ProcessLog(log.directory, _header(log.pid, log.header.get("allowed", [])))
        tracer.recorder = Recorder(child)
        _tracers[position] = (tracer, child)
    _state["owner_exit"] = None


def follow(job: Job) -> None:
    """In a new interpreter of the job (the start-up hook): trace once torch is imported."""
    if not _state["atexit"]:
        atexit.register(finish)
        _state["atexit"] = True
    arm()
    parent = os.getppid()
    if "torch" in sys.modules:
        start(job, parent)
    else:
        sys.meta_path.insert(0, _AfterTorchImport(lambda: start(job, parent)))


class _AfterTorchImport:
    """A meta-path finder that lets torch import normally, then calls `then()`."""

    def __init__(self, then) -> None:
        self.then = then

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run, then = spec.loader.exec_module, self.then

        def exec_module(module):
            run(module)
            try:
                then()
            except Exception as exc:  # never break the program's `import torch`
                sys.stderr.write(f"devlint: process {os.getpid()} is not traced: {exc}\n")

        spec.loader.exec_module = exec_module
        return spec


def finish() -> None:
    """Stop this process's tracers and finish their logs; undo the patches. Safe to call twice."""
    pid = os.getpid()
    for tracer, log in list(_tracers):
        if log.pid != pid or log.finished:
            continue
        try:
            tracer.stop()
            log.finish(tracer.report())
        except OSError:
            pass  # the job directory is gone (the owner gave up waiting): nothing to keep
        _tracers.remove((tracer, log))
    if not any(log.pid == pid and not log.finished for _, log in _tracers):
        disarm()
