"""The runtime tracer: `devlint run`, `devlint.trace()` and the recorder the pytest plugin uses.

Imports torch; nothing in the static half imports this package.
"""

from devlint.runtime.report import DeviceLeakError, Leak
from devlint.runtime.tracer import Tracer, trace

__all__ = ["DeviceLeakError", "Leak", "Tracer", "trace"]
