"""Library knowledge from the environment being linted (docs/libraries.md).

Which environment (environment.py), which distributions and versions it holds
(distributions.py), what the project imports from them (imports.py), what their source
files say about devices (summary.py, cached per distribution version in cache.py), and
those summaries combined into entries of the project index (knowledge.py, combine.py). Library
source is read as text and parsed, never imported or executed.

Layering: this package sits beside the project index (static/index.py, whose collection
it reuses on library files), below the file context and the checks.
"""

from devlint.libraries.environment import Environment, EnvironmentNotFound, find
from devlint.libraries.knowledge import Libraries

__all__ = ["Environment", "EnvironmentNotFound", "Libraries", "find"]
