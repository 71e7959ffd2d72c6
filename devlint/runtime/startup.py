"""The start-up hook of every Python process a traced program starts.

Run at interpreter start by `devlint_startup.pth` (installed next to devlint by the wheel)
or by devlint/_site/sitecustomize.py (put first on PYTHONPATH by `devlint run` when the
`.pth` is not installed). Inert unless DEVLINT_JOB is set: then this process follows the
job (children.py). Never raises: a broken hook must not break the program.
"""

from __future__ import annotations

import os
import sys

_begun = False


def begin() -> None:
    global _begun
    if _begun:
        return  # both the .pth and the sitecustomize reached us
    _begun = True
    try:
        from devlint.runtime.job import Job

        job = Job.from_env()
        if job is None or job.owner == os.getpid():
            return
        from devlint.runtime import children

        children.follow(job)
    except Exception as exc:
        sys.stderr.write(f"devlint: process {os.getpid()} is not traced: {exc}\n")
