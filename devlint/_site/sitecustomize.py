"""devlint's start-up hook for the child processes of `devlint run`, for installs without
the wheel's `devlint_startup.pth` (a checkout on PYTHONPATH, an old editable install).

`devlint run` puts this directory first on PYTHONPATH. Python imports only the first
`sitecustomize` it finds, so this one imports the next one on the path (a distribution's,
a virtualenv's, the user's) before starting devlint's hook, which does nothing unless
DEVLINT_JOB is set.
"""

import os
import sys


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    mine = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        import sitecustomize  # noqa: F401 - the one this file hides, if any
    except ImportError as exc:
        if exc.name != "sitecustomize":
            sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}\n")
        if mine is not None:
            sys.modules["sitecustomize"] = mine
    except Exception as exc:  # as site.py reports a failing sitecustomize
        sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}\n")
    finally:
        sys.path[:] = saved


_chain()
if os.environ.get("DEVLINT_JOB"):
    try:
        from devlint.runtime.startup import begin
    except ImportError:
        pass  # another interpreter, without devlint: nothing to trace here
    else:
        begin()
