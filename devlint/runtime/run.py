"""`devlint run`: run a program in this process under the tracer (the `coverage run` way).

The program sees the `sys.argv` and `sys.path[0]` that `python SCRIPT ARGS` or
`python -m MODULE ARGS` would give it, and its stdout untouched; devlint writes only
to stderr and to the report. Exit code: the program's own when it failed, else 1
when something leaked, else 0. The report is written in every case, a crash included.
"""

from __future__ import annotations

import os
import runpy
import shlex
import sys
import threading
import traceback

from devlint.runtime import report as report_file
from devlint.runtime import summary
from devlint.runtime.tracer import Tracer

EXIT_LEAKS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def main(target: str, args: list[str], *, module: bool, devices, report_path, strict: bool, thorough: bool = False) -> int:
    tracer = Tracer(devices, strict=strict, exercised=report_path is not None, thorough=thorough)
    command = shlex.join([sys.executable, *(["-m"] if module else []), target, *args])
    saved_argv, saved_path0 = sys.argv[:], sys.path[0]
    sys.argv = [target, *args]
    sys.path[0] = "" if module else os.path.dirname(os.path.abspath(target))
    code = None
    tracer.start()
    try:
        code = _run(target, module)
        _wait_for_threads()
    except KeyboardInterrupt:
        traceback.print_exc()
        code = EXIT_INTERRUPTED
    finally:
        tracer.stop()
        sys.argv, sys.path[0] = saved_argv, saved_path0
        result = tracer.report(command)
        sys.stderr.write(summary.render(result))
        written = _write(result, report_path)
    if code:
        return code
    if not written:
        return EXIT_ERROR
    return EXIT_LEAKS if result["leaks"] else 0


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
