"""devlint: find and fix PyTorch code that leaks onto GPU0.

The static checker (`devlint check`) needs only the standard library and click;
the runtime tracer (`devlint run`, `devlint.trace`) imports torch when used.
"""

__version__ = "0.1.0"

_RUNTIME = {"trace": "devlint.runtime.tracer", "Tracer": "devlint.runtime.tracer", "DeviceLeakError": "devlint.runtime.report"}


def __getattr__(name: str):
    """`devlint.trace` and friends, imported on first use so that `import devlint` never imports torch."""
    if name in _RUNTIME:
        import importlib

        return getattr(importlib.import_module(_RUNTIME[name]), name)
    raise AttributeError(f"module 'devlint' has no attribute {name!r}")
