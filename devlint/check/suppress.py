"""What the user asked not to see: the rule selection, per-file ignores and `# noqa`.

The configuration is read once (config.Settings); this is the one place that applies
it to findings, whichever stage made them: the checks, the fix stage's re-check, or
the runtime report's leaks placed at a user's line.
"""

from __future__ import annotations

from devlint.check.discover import SourceFile
from devlint.config import Settings
from devlint.findings import Finding
from devlint.static import noqa


class Suppression:
    def __init__(self, settings: Settings, enabled: frozenset[str]):
        self.settings = settings
        self.enabled = enabled
        self._ignored: dict[str, frozenset[str]] = {}

    def relative(self, file: SourceFile) -> str:
        """The file's path relative to the configuration's root, as `per-file-ignores` match it."""
        try:
            return file.path.relative_to(self.settings.root).as_posix()
        except ValueError:
            return file.display

    def ignored(self, file: SourceFile) -> frozenset[str]:
        if file.display not in self._ignored:
            self._ignored[file.display] = self.settings.ignored_for(self.relative(file))
        return self._ignored[file.display]

    def per_file(self, findings: list[Finding], file: SourceFile) -> list[Finding]:
        """Drop the codes ignored for this file (the checks already honoured the selection
        and `# noqa`)."""
        ignored = self.ignored(file)
        return [f for f in findings if f.code not in ignored] if ignored else findings

    def keeps_placed(self, finding: Finding, file: SourceFile, source_text: str) -> bool:
        """A finding placed from outside the checks (a runtime leak): selection, per-file
        ignores and `# noqa` all apply to it."""
        if finding.code not in self.enabled or finding.code in self.ignored(file):
            return False
        return not noqa.parse(source_text).suppresses(finding.code, finding.location.row, finding.end_location.row)
