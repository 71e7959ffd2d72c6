"""`devlint run`: run a program in this process under the tracer (the `coverage run` way).

The program sees the `sys.argv` and `sys.path[0]` that `python SCRIPT ARGS` or
`python -m MODULE ARGS` would give it, and its stdout untouched; devlint writes only
to stderr and to the report. Exit code: the program's own when it failed, else 1
when something leaked, else 0. The report is written in every case, a crash included.

A run is a job (job.py): its Python children are traced with the same settings
(children.py) unless `children=False`, and every process streams its leaks to the job
directory, which this process joins into one report at the end. Under torchrun
(`torchrun ... -m devlint run ...`) each rank runs this; the ranks of one agent share a
job directory, and local rank 0 waits for the others and writes the report and summary
for the node; the other ranks exit with their program's own status. `accelerate launch`
runs torchrun's agent, and DeepSpeed's launcher sets the same RANK/LOCAL_RANK variables in
each rank (job.launched_rank), so both work the same way round, and under devlint. A launcher run under
devlint (`devlint run -m torch.distributed.run ...`) allows itself no GPU when the
devices are `auto`: `auto` is each rank's own `cuda:$LOCAL_RANK`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import runpy
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import tokenize
import traceback
import zipfile

from devlint import reports
from devlint.runtime import children as children_module
from devlint.runtime import job as job_module
from devlint.runtime import report as report_file
from devlint.runtime import summary
from devlint.runtime.attribution import Frame
from devlint.runtime.tracer import Tracer

EXIT_LEAKS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
LAUNCHERS = ("torch.distributed.run", "torch.distributed.launch", "accelerate.commands.launch", "accelerate.commands.accelerate_cli", "deepspeed.launcher.runner", "deepspeed.launcher.launch")
LAUNCHER_SCRIPTS = ("torchrun", "accelerate", "deepspeed")


def main(target: str, args: list[str], *, module: bool, report_path, children: bool = True, options: dict) -> int:
    """`options`: the tracer's settings, `Tracer(**options)` (device, strict, ...); child
    processes get the same ones."""
    options = {**options, "exercised": report_path is not None}
    problem = unrunnable(target, module)
    if problem is not None:
        sys.stderr.write(f"devlint: error: {problem}\n")
        return EXIT_ERROR
    inherited = job_module.Job.from_env()
    if inherited is not None and inherited.owner != os.getpid():
        return _run_inside_job(target, args, module)
    if report_path is not None:
        try:
            report_file.check_writable(report_path)
        except OSError as exc:
            sys.stderr.write(f"devlint: error: cannot write the report to {report_path}: {exc}\n")
            return EXIT_ERROR
    rank = job_module.launched_rank()
    own_options = options
    if _is_launcher(target, module) and _asks_auto(options):
        own_options = {**options, "device": "cpu"}  # the launcher itself uses no GPU; each rank resolves `auto`
    tracer = Tracer(**own_options)
    command = shlex.join([sys.executable, *(["-m"] if module else []), target, *args])
    job = log = None
    if children or rank:
        try:
            job, log = _open_job(options, rank, tracer, command)
        except OSError as exc:
            sys.stderr.write(f"devlint: error: cannot create the job directory: {exc}\n")
            return EXIT_ERROR
    undo_environment = children_module.export(job) if job is not None and children else None
    saved_argv, saved_path0 = sys.argv[:], sys.path[0]
    sys.argv = [target, *args]
    sys.path[0] = "" if module else os.path.dirname(os.path.abspath(target))
    me = os.getpid()
    outcome = {}

    def finish(code) -> int:
        """Everything after the program, once: also when the program calls os._exit."""
        if "code" in outcome:
            return outcome["code"]
        outcome["code"] = code
        tracer.stop()
        sys.argv, sys.path[0] = saved_argv, saved_path0
        if undo_environment is not None:
            undo_environment()
        if job is not None and children:
            children_module.release()
        result = tracer.report(command)
        if log is not None:
            log.finish(result)
            if rank and job_module.identity()["local_rank"] != 0:
                return code or 0  # local rank 0 writes the node's report
            result = _join(job, rank, command)
        sys.stderr.write(summary.render(result))
        written = _write(result, report_path)
        if code:
            outcome["code"] = code
        elif not written:
            outcome["code"] = EXIT_ERROR
        else:
            outcome["code"] = EXIT_LEAKS if result["leaks"] else 0
        return outcome["code"]

    tracer.start(entry=_entry(target, module))
    if job is not None and children:
        children_module.adopt(tracer, log)
        children_module.arm(owner_exit=finish)
    restore_sigterm = _exit_on_sigterm()
    code = None
    try:
        code = _run(target, module)
        _wait_for_threads()
    except KeyboardInterrupt:
        traceback.print_exc()
        code = EXIT_INTERRUPTED
    finally:
        if os.getpid() != me:  # a child forked by the program came back here: it is not the owner
            restore_sigterm()
            children_module.finish()
            return code or 0
        restore_sigterm(hold=True)  # a SIGTERM now (torchrun stopping ranks) must not cut the report short
        try:
            code = finish(code)
        finally:
            restore_sigterm()
    return code


def unrunnable(target: str, module: bool) -> str | None:
    """Why `python SCRIPT` / `python -m MODULE` could not start the program, checked before
    tracing starts, so a typo costs one line and not a traceback and an empty summary.
    Imports nothing: a parent package's import-time work must still be traced."""
    return _missing_module(target) if module else _not_a_script(target)


def _not_a_script(path: str) -> str | None:
    if not os.path.exists(path):
        return f"cannot run {path}: no such file"
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "__main__.py")):
            return None  # python runs a directory's __main__.py
        return f"cannot run {path}: it is a directory without a __main__.py"
    if zipfile.is_zipfile(path):
        return None  # python runs a zip archive's __main__.py
    try:
        with tokenize.open(path) as handle:  # the encoding Python itself would read it with
            compile(handle.read(), path, "exec", dont_inherit=True)
    except OSError as exc:
        return f"cannot run {path}: {exc.strerror or exc}"
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno}: {exc.msg})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        return f"cannot run {path}: it is not a Python program{where}"
    return None


def _missing_module(name: str) -> str | None:
    return _find_module(name)[1]


def _find_module(name: str):
    """(the spec `python -m name` would run, None) or (None, why it cannot), found on
    sys.path without importing anything (a package's `__main__` for a package)."""
    if not name or any(not part.isidentifier() for part in name.split(".")):
        return None, f"cannot run -m {name}: not a module name"
    parts = name.split(".")
    spec = None
    for depth in range(1, len(parts) + 1):
        dotted = ".".join(parts[:depth])
        if depth == 1:
            try:
                spec = importlib.util.find_spec(dotted)  # a top-level name: found, not imported
            except ValueError:  # in sys.modules without a spec (__main__): python -m would fail too
                spec = None
        else:
            spec = importlib.machinery.PathFinder.find_spec(dotted, spec.submodule_search_locations)
        if spec is None:
            return None, f"cannot run -m {name}: no module named {dotted}"
        if depth < len(parts) and spec.submodule_search_locations is None:
            return None, f"cannot run -m {name}: {dotted} is not a package"
    if spec.submodule_search_locations is not None:
        spec = importlib.machinery.PathFinder.find_spec(f"{name}.__main__", spec.submodule_search_locations)
        if spec is None:
            return None, f"cannot run -m {name}: it is a package without a __main__ module"
    return spec, None


def _entry(target: str, module: bool) -> Frame:
    """The program's first line, where a context is blamed when nothing nearer is known."""
    if module:
        spec = _find_module(target)[0]
        origin = spec.origin if spec is not None and spec.has_location else f"<module {target}>"
        return Frame(origin, 1, "<module>")
    path = os.path.join(target, "__main__.py") if os.path.isdir(target) else target
    return Frame(os.path.abspath(path), 1, "<module>")


def _run_inside_job(target: str, args: list[str], module: bool) -> int:
    """`devlint run` in a process that a traced program started (torchrun ranks under
    `devlint run -m torch.distributed.run -m devlint run ...`): the start-up hook traces
    it already, so just run the program."""
    saved_argv, saved_path0 = sys.argv[:], sys.path[0]
    sys.argv = [target, *args]
    sys.path[0] = "" if module else os.path.dirname(os.path.abspath(target))
    try:
        return _run(target, module)
    finally:
        sys.argv, sys.path[0] = saved_argv, saved_path0


def _is_launcher(target: str, module: bool) -> bool:
    return target in LAUNCHERS if module else os.path.basename(target) in LAUNCHER_SCRIPTS


def _asks_auto(options: dict) -> bool:
    device = options.get("device")
    values = [device] if isinstance(device, str) else list(device or ())
    if not values:
        values = os.environ.get("DEVLINT_DEVICE", "auto").replace(",", " ").split() or ["auto"]
    return any(str(v).strip().lower() == "auto" for v in values)


def _open_job(options: dict, rank: bool, tracer, command: str):
    """The job directory and this process's log: a fresh directory, or under torchrun the
    one every local rank of this agent names the same way."""
    if rank:
        directory = job_module.rank_directory()
        os.makedirs(directory, mode=0o700, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="devlint-job-")
    job = job_module.Job(directory, os.getpid(), options)
    header = {**job_module.identity(), "parent": None, "allowed": tracer.allowed.labels, "command": command}
    log = job_module.ProcessLog(directory, header)
    tracer.recorder.log = log
    if rank:
        log.register()  # local rank 0 waits for every registered rank
    return job, log


def _join(job, rank: bool, command: str) -> dict:
    """The job's report from every process log; the directory goes once nothing writes to it."""
    ranks = job_module.local_ranks() if rank else 0
    wait = job_module.wait_limit(job_module.RANK_WAIT if rank else job_module.CHILD_WAIT)
    parts, notes = job_module.collect(job.directory, ranks=ranks, wait=wait)
    result = reports.join(parts, command)
    result["leaks"] += reports.contexts_on_other_ranks(result)
    result["notes"] += notes
    if not any(not p["finished"] and job_module.alive(p["pid"]) for p in result["processes"]):
        shutil.rmtree(job.directory, ignore_errors=True)
    else:
        result["notes"].append(f"the process logs are kept in {job.directory} (`devlint report merge {job.directory}` reads them again)")
    return result


def _exit_on_sigterm():
    """SIGTERM (torchrun stopping the other ranks when one failed) ends the program with
    status 143 through Python's normal exit, so the report is still written. Only when
    the program would otherwise die of it (the default handler)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda hold=False: None

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)

    def restore(hold: bool = False) -> None:
        """Back to the default; with `hold`, ignore SIGTERM until called again."""
        if signal.getsignal(signal.SIGTERM) in (terminate, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, signal.SIG_IGN if hold else signal.SIG_DFL)

    return restore


def _write(result: dict, report_path) -> bool:
    if report_path is None:
        return True
    try:
        report_file.write(result, report_path)
    except OSError as exc:
        sys.stderr.write(f"devlint: error: cannot write the report to {report_path}: {exc}\n")
        return False
    return True


def _run(target: str, module: bool) -> int:
    """The program's exit status, reporting an uncaught exception as Python would."""
    try:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(os.path.abspath(target), run_name="__main__")  # __file__ is absolute, as in `python SCRIPT`
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        _print_program_exception(exc)
        return 1
    return 0


def _print_program_exception(exc: BaseException) -> None:
    """The traceback from the program's first frame: devlint's and runpy's are noise."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _is_runner_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _is_runner_frame(filename: str) -> bool:
    return filename == __file__ or "runpy" in os.path.basename(filename)


def _wait_for_threads() -> None:
    """Join the program's non-daemon threads, as the interpreter would at exit, so that
    what they do is traced too."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
