"""The rule catalog: one TOML file per rule under rules/, loaded once.

The catalog is data shared by both halves. The static checks take their messages,
fix grades and API tables (factories, current-device calls, library defaults) from
it; the runtime tracer takes the same tables to decide what to intercept; the
docs (`devlint rule CODE`) and the example tests read the same files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devlint import __version__, user_cache
from devlint.findings import Applicability

DOCS_URL = "https://github.com/devlint/devlint/blob/main/docs/rules/{code}.md"


SINGLE = "example.py"  # the module name of a one-module example


@dataclass(frozen=True)
class Example:
    """Leaking code and its fixed form, by module: one module, or several when the fix
    threads a device across modules (`[examples.bad]` / `[examples.good]` tables)."""

    bad: dict[str, str]
    good: dict[str, str] | None = None
    title: str = ""

    def as_data(self, modules: dict[str, str] | None) -> str | dict[str, str] | None:
        """A one-module example as its text; several modules by name."""
        if modules is None or set(modules) != {SINGLE}:
            return modules
        return modules[SINGLE]


def _modules(value) -> dict[str, str] | None:
    if value is None:
        return None
    return {SINGLE: value} if isinstance(value, str) else dict(value)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    rationale: str
    versions: str
    fix_applicability: Applicability | None  # None: the rule never offers a fix
    fix_summary: str
    examples: tuple[Example, ...]
    valid: tuple[str, ...]  # code that must not be flagged
    invalid: tuple[str, ...]  # code that must be flagged
    api: dict = field(default_factory=dict)  # tables shared with the runtime
    scope: str = "static"  # "static" (both halves), "runtime" (runtime only) or "meta"
    triggers: tuple[str, ...] = ()  # substrings: a file with a finding of this rule contains one
    path: Path | None = None

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code)


class CatalogError(Exception):
    """A rule file is malformed: a packaging bug, reported with the file's name."""


def catalog_dir() -> Path:
    """rules/ inside the wheel, or at the repository root in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "catalog_data", here.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise CatalogError(f"rule catalog not found next to {here}")


def _rule(data: dict, path: Path) -> Rule:
    try:
        fix = data.get("fix", {})
        grade = fix.get("applicability")
        return Rule(
            code=data["code"],
            name=data["name"],
            summary=data["summary"].strip(),
            rationale=data["rationale"].strip(),
            versions=data.get("versions", "").strip(),
            fix_applicability=Applicability(grade) if grade and grade != "none" else None,
            fix_summary=fix.get("summary", "").strip(),
            examples=tuple(
                Example(bad=_modules(e["bad"]), good=_modules(e.get("good")), title=e.get("title", ""))
                for e in data.get("examples", [])
            ),
            valid=tuple(v["code"] for v in data.get("valid", [])),
            invalid=tuple(v["code"] for v in data.get("invalid", [])),
            api=data.get("api", {}),
            scope=data.get("scope", "static"),
            triggers=tuple(data.get("triggers", ())),
            path=path,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise CatalogError(f"{path.name}: missing or bad field: {exc}") from exc


def toml():
    """tomllib (tomli before Python 3.11), imported when there is TOML to parse: a run
    replayed from its record (check/replay.py) imports little else, and most runs parse no
    rule file (see _parsed) and no configuration."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib


def _parsed(files: dict[str, bytes]) -> dict[str, dict]:
    """Each rule file's TOML data, by file name. Parsing the 36 files with tomllib took
    about 35 ms of every run (a tenth of a warm `devlint check`); the data is kept as JSON
    in the user's cache directory under a hash of the files' bytes, so a changed file is
    parsed again and a stale copy is never read. A cache that cannot be read or written
    is only slower."""
    digest = hashlib.blake2b(__version__.encode(), digest_size=16)
    for name, raw in files.items():
        digest.update(name.encode() + b"\0" + raw + b"\0")
    kept = user_cache.directory() / f"catalog-{digest.hexdigest()}.json"
    try:
        data = json.loads(kept.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.keys() == files.keys():
            return data
    except (OSError, ValueError):
        pass
    import tempfile  # with tomllib, only when the rule files changed: most runs parse none

    tomllib = toml()
    data = {}
    for name, raw in files.items():
        try:
            data[name] = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(f"{name}: {exc}") from exc
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=kept.parent, delete=False, suffix=".tmp") as out:
            out.write(json.dumps(data))  # dumps: json.dump encodes in Python
        os.replace(out.name, kept)
    except (OSError, TypeError, ValueError):
        pass
    return data


@functools.lru_cache(maxsize=1)
def load() -> dict[str, Rule]:
    """All rules by code, in code order."""
    paths = sorted(catalog_dir().glob("DL*.toml"))
    try:
        files = {p.name: p.read_bytes() for p in paths}
    except OSError as exc:
        raise CatalogError(f"{exc.filename}: {exc.strerror}") from exc
    data = _parsed(files)
    rules = [_rule(data[p.name], p) for p in paths]
    by_code = {r.code: r for r in rules}
    if len(by_code) != len(rules):
        raise CatalogError("two rule files share a code")
    return dict(sorted(by_code.items()))


def get(code: str) -> Rule:
    return load()[code]


def api(code: str, key: str, default=None):
    """One API table of one rule, e.g. api("DL011", "factories")."""
    return load()[code].api.get(key, default)


def fingerprint() -> str:
    """A hash of every rule file: part of the result-cache key."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for path in sorted(catalog_dir().glob("DL*.toml")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()
