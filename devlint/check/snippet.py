"""Check or fix modules given as text, their own definitions forming the project index.

The catalog examples, the property tests and the editor's unsaved buffers use it: no
files on disk, no configuration, no cache; the same stages as `devlint check`
(lint, selected, thread, fix), structural fixes across the given modules included.
"""

from __future__ import annotations

from pathlib import Path

from devlint import catalog
from devlint.check import fix, lint, thread
from devlint.check.cache import content_key
from devlint.check.discover import SourceFile
from devlint.check.read import Work
from devlint.check.suppress import Suppression
from devlint.config import Settings
from devlint.findings import Finding


def _module(filename: str) -> str:
    """`pkg/mod.py` -> `pkg.mod`; a package's `pkg/__init__.py` -> `pkg`, as discover names it."""
    return filename.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def _works(modules: dict[str, str]) -> list[Work]:
    """Keyed by content as read.py keys files: the index stage hands its trees to the check
    stage by key, so modules sharing an empty key were checked with each other's trees."""
    works = []
    for name, text in modules.items():
        data = text.encode("utf-8")
        works.append(Work(SourceFile(Path(name), name, _module(name)), data, None, content_key(data)))
    return works


def _lint(works: list[Work], enabled: frozenset[str] | None):
    enabled = frozenset(catalog.load()) if enabled is None else enabled
    suppression = Suppression(Settings(root=Path(".")), enabled)
    linted = lint.lint_works(works, suppression)
    findings, selections = thread.project_findings(linted)
    return linted, suppression, findings, selections


def lint_modules(modules: dict[str, str], enabled: frozenset[str] | None = None) -> list[Finding]:
    return _lint(_works(modules), enabled)[2]


def fix_modules(modules: dict[str, str], unsafe: bool = False, enabled: frozenset[str] | None = None) -> tuple[dict[str, str], list[Finding]]:
    """The modules' texts after fixing, and the findings that remain in them."""
    linted, suppression, findings, selections = _lint(_works(modules), enabled)
    outcome = fix.fix_project(findings, linted, selections, suppression, unsafe, write=False)
    texts = {name: outcome.contents[name].decode("utf-8") if name in outcome.contents else text for name, text in modules.items()}
    return texts, lint_modules(texts, enabled) if outcome.contents else findings


def lint_text(text: str, filename: str = "example.py", enabled: frozenset[str] | None = None) -> list[Finding]:
    return lint_modules({filename: text}, enabled)


def fix_text(text: str, unsafe: bool = False, filename: str = "example.py", enabled: frozenset[str] | None = None) -> tuple[str, list[Finding]]:
    """The fixed text and the findings that remain in it."""
    texts, remaining = fix_modules({filename: text}, unsafe, enabled)
    return texts[filename], remaining
