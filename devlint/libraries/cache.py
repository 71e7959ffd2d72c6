"""Library summaries on disk, one JSON file per distribution and version.

Kept in the user's cache directory (`DEVLINT_CACHE_DIR`, else `$XDG_CACHE_HOME/devlint`,
else `~/.cache/devlint`; `%LOCALAPPDATA%\\devlint` on Windows), not in the project: the
same installed library is read once for every project that uses it. A file is named by
the distribution's name and version and holds the summary format and devlint version it
was written by: a new version of either is a miss, and the old file is replaced. (Not
devlint's code fingerprint, as the result cache has: every install of devlint shares these
files, and two installs of different code, a checkout and a release, would replace each
other's on every run. A change to what a summary says bumps FORMAT.) Each
module's entry also keeps its file's size and modification time, so a library edited in
place (an editable install) is re-read without a version change. JSON only (a cache must
not be able to run code), written atomically; a cache that cannot be written is skipped.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from devlint import __version__, user_cache
from devlint.libraries.distributions import Distribution

FORMAT = 3  # bump when what a summary holds (summary.py) changes: older entries are ignored


def directory() -> Path:
    return user_cache.directory() / "libraries"


def _stamp(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


class DistributionsCache:
    """The environments' import names -> distributions (distributions.Distributions), kept
    beside the summaries."""

    def __init__(self, enabled: bool = True):
        self.path = directory() / "distributions.json"
        self.enabled = enabled
        self.remembered: dict = {}
        if enabled:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict) and data.get("format") == FORMAT:
                self.remembered = data.get("sites", {})

    def save(self) -> None:
        if self.enabled:
            _write(self.path, {"format": FORMAT, "sites": self.remembered})


class DistributionCache:
    """The cached module summaries of one distribution version; saved when changed."""

    def __init__(self, dist: Distribution, enabled: bool = True):
        safe = re.sub(r"[^A-Za-z0-9._+-]", "_", f"{dist.name}-{dist.version}")
        self.path = directory() / f"{safe}.json"
        self.key = {"format": FORMAT, "devlint": __version__, "name": dist.name, "version": dist.version}
        self.enabled = enabled
        self.modules: dict[str, dict] = self._load() if enabled else {}
        self.changed = False

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("key") != self.key or not isinstance(data.get("modules"), dict):
            return {}
        return data["modules"]

    def get(self, module: str, path: str) -> dict | None:
        entry = self.modules.get(module)
        if entry is None or entry.get("file") != path or entry.get("stamp") != _stamp(path):
            return None
        return entry.get("summary")

    def put(self, module: str, path: str, found: dict) -> None:
        self.modules[module] = {"file": path, "stamp": _stamp(path), "summary": found}
        self.changed = True

    def save(self) -> None:
        if self.enabled and self.changed:
            _write(self.path, {"key": self.key, "modules": dict(sorted(self.modules.items()))})
            self.changed = False


def _write(path: Path, data: dict) -> None:
    """Write JSON atomically; a cache that cannot be written (a read-only home) is skipped:
    its content is recomputed next time."""
    import tempfile  # only when something changed: most runs write nothing

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(data, separators=(",", ":")))  # dumps: json.dump encodes in Python
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
