"""The runtime tracer: `devlint run`, `devlint.trace()` and the recorder the pytest plugin uses.

The tracer imports torch; this package itself does not, so that the parts that only read
and write reports (job logs, `devlint report merge`, the start-up hook of child processes)
load without it. `Tracer`, `trace`, `Leak` and `DeviceLeakError` are imported on first use.
"""

_EXPORTS = {"DeviceLeakError": "devlint.runtime.report", "Leak": "devlint.runtime.report", "Tracer": "devlint.runtime.tracer", "trace": "devlint.runtime.tracer"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'devlint.runtime' has no attribute {name!r}")
