"""Check or fix one module given as text, with its own definitions as the project index.

The catalog examples, the property tests and the editor's unsaved buffers use it: no
files, no configuration, no cache.
"""

from __future__ import annotations

from devlint import catalog
from devlint.checks import all_checks
from devlint.findings import Finding
from devlint.static import analyze
from devlint.static import index as project_index
from devlint.static.source import Source


def lint_text(
    text: str,
    filename: str = "example.py",
    module: str = "example",
    enabled: frozenset[str] | None = None,
) -> list[Finding]:
    enabled = frozenset(catalog.load()) if enabled is None else enabled
    data = text.encode("utf-8")
    index = project_index.ProjectIndex([analyze.facts(data, filename, module)])
    return analyze.check(data, filename, module, enabled, index, all_checks()).findings


def fix_text(
    text: str,
    unsafe: bool = False,
    filename: str = "example.py",
    module: str = "example",
    enabled: frozenset[str] | None = None,
) -> tuple[str, list[Finding]]:
    """The fixed text and the findings that remain in it."""
    from devlint.check import fix

    def recheck(new_text: str) -> list[Finding]:
        return lint_text(new_text, filename, module, enabled)

    outcome = fix.fix_source(Source(text), recheck(text), recheck, unsafe)
    return outcome.text, outcome.remaining
