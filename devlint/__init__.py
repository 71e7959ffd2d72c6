"""devlint: find and fix PyTorch code that leaks onto GPU0.

The static checker (`devlint check`) needs only the standard library and click;
the runtime tracer (`devlint run`, `devlint.trace`) imports torch when used.
"""

__version__ = "0.1.0"
