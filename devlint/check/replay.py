"""The replay stage: a run whose inputs are the last run's gives the last run's findings.

With no file edited, a warm run still read and hashed every file, rebuilt the project
index and re-checked the project-wide stages' inputs from the result cache, to arrive at
the findings it gave last time; importing the static engine for that was a third of it.
So the last run's findings are kept in `.devlint_cache/last-run.json` with what they came
from, and given again while none of it changed:

- the key: the result cache's header (devlint version, rule files, selection, working
  directory), the settings and the environment whose libraries were read;
- every checked file: its path, name, module, content key and stamp;
- every other file or directory the results depend on: the library files read and the
  directories the library reader looked in, and the C++/CUDA sources of extensions (the
  index's `file:` entries), with their stamps.

A stamp is what os.stat says of a file: size, modification and change times, inode. It is
trusted only when both times are older than the start of the run that recorded it by
RACY_NS: a file written during that run, or just before it, could be written again within
the same tick of the file system's clock and keep its stamp (git's "racily clean"
entries); the change time cannot be set back by hand. A checked file whose stamp changed,
or was not trusted, is hashed, and the same content is the same file (a `touch`). Any
other difference, or a record that cannot be read, is a miss: the run goes through every
stage (with the result cache) and records itself again. The record's first line is the
content key of the rest: a record damaged in a way that still parses (a flipped character
in a message) is not replayed either.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from devlint.check.cache import DIRECTORY, content_key, finding_from_data, finding_to_data
from devlint.check.discover import SourceFile
from devlint.findings import Finding

_FILE = "last-run.json"
_FORMAT = 2
RACY_NS = 3_000_000_000  # the coarsest file system clocks (FAT) tick every 2 s


def key(header: str, settings, environment) -> str:
    """What the findings were made with besides the files: the result cache's header, the
    settings (as their dataclass shows them) and the libraries' environment."""
    return content_key(f"{header}|{settings!r}|{environment!r}".encode())


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _trusted(stamp: list[int] | None, started_ns: int) -> bool:
    return stamp is None or max(stamp[1], stamp[2]) < started_ns - RACY_NS


class Record:
    """The last run's record under `root`, read once."""

    def __init__(self, root: Path):
        self.path = root / DIRECTORY / _FILE
        try:
            held, _, body = self.path.read_bytes().partition(b"\n")
            data = json.loads(body) if held.decode("ascii") == content_key(body) else None
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            data = None
        self._data = data if isinstance(data, dict) and data.get("format") == _FORMAT else None

    def findings(self, run_key: str, files: list[SourceFile], started_ns: int) -> tuple[list[Finding], dict] | None:
        """The recorded findings and library environment (SARIF's), if nothing they came
        from changed; None otherwise."""
        data = self._data
        if data is None or data.get("key") != run_key:
            return None
        try:
            recorded = data["files"]
            if len(recorded) != len(files):
                return None
            keys, rehashed = [], False
            for file, (path, display, module, held_key, held_stamp) in zip(files, recorded):
                if (str(file.path), file.display, file.module) != (path, display, module):
                    return None
                if held_stamp is None or _stamp(path) != held_stamp:
                    if _content_key(path) != held_key:
                        return None
                    rehashed = True
                keys.append(held_key)
            if any(_stamp(path) != held for path, held in data["outside"]):
                return None
            findings = [finding_from_data(d) for d in data["findings"]]
            environment = data["environment"]
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if rehashed:  # the stamps of files touched but not changed, trusted from now on
            self.write(run_key, started_ns, list(zip(files, keys)), [path for path, _ in data["outside"]], data["findings"], environment)
        return findings, environment

    def write(
        self, run_key: str, started_ns: int, files: list[tuple[SourceFile, str]], outside, findings: list, environment: dict
    ) -> None:
        """Record a run (`files`: each checked file with its content key; `outside`: the other
        paths its results depend on; `findings` as finding_to_data gives them, or Findings).
        A path outside whose stamp cannot be trusted yet leaves no record: the next run goes
        through the stages, and records itself."""
        held = [[path, _stamp(path)] for path in sorted(outside)]
        if not all(_trusted(stamp, started_ns) for _, stamp in held):
            self.remove()
            return
        listed = []
        for file, held_key in files:
            path = str(file.path)
            stamp = _stamp(path)
            listed.append([path, file.display, file.module, held_key, stamp if stamp is not None and _trusted(stamp, started_ns) else None])
        data = {
            "format": _FORMAT,
            "key": run_key,
            "files": listed,
            "outside": held,
            "findings": [finding_to_data(f) if isinstance(f, Finding) else f for f in findings],
            "environment": environment,
        }
        import tempfile  # only when recording: a replayed run imports little else

        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".last-run.", suffix=".tmp")
            body = json.dumps(data, separators=(",", ":")).encode()  # dumps: C-encoded (cache.py's save)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content_key(body).encode() + b"\n" + body)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only tree is still checked, just not replayed

    def remove(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


def _content_key(path: str) -> str | None:
    """The content key of a regular file (what check/read.py keys it by), None if unreadable."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return content_key(handle.read())
    except OSError:
        return None
