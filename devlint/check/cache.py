"""The result cache under `.devlint_cache/`: an unchanged tree re-checks in a blink.

Entries are keyed by a hash of each file's content. A whole cache is valid only for
one devlint code (its version and source files, code_version.py), rule catalog and rule
selection (the header key). A file's
findings can also depend on the project index (DL012: which callables default to
CUDA; DL003: which parameters receive type strings), so each entry records the
index keys the file looked up and a digest of what they held: if another file
changes a definition this file calls, the entry is stale; any other edit elsewhere
leaves it valid. The file is JSON (no pickle: a cache in a shared tree must not be
able to run code) and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from devlint import catalog, code_version
from devlint.findings import AddArgument, AddParameter, Applicability, Edit, Finding, Fix, Library, Location, Span, Threading

if TYPE_CHECKING:
    from devlint.static import index as project_index

DIRECTORY = ".devlint_cache"
_FILE = "results-v3.json"


def content_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def findings_digest(findings: list[Finding]) -> str:
    return content_key(json.dumps([finding_to_data(f) for f in findings], separators=(",", ":")).encode())


def header_key(enabled: frozenset[str], base: Path) -> str:
    """The key of a whole cache. `base` is the directory file names are shown relative to
    (the working directory): findings and facts carry those names in their messages
    ("defaults to 'cuda' (pkg/lib.py:7)"), so a run from another directory starts afresh."""
    return hashlib.blake2b(
        f"{code_version.fingerprint()}|{catalog.fingerprint()}|{','.join(sorted(enabled))}|{base.resolve()}".encode(), digest_size=16
    ).hexdigest()


# --- (de)serialisation --------------------------------------------------------------


def _span_to_data(span: Span) -> list:
    return [span.filename, *span.start, *span.end]


def _span_from_data(d: list) -> Span:
    return Span(d[0], (d[1], d[2]), (d[3], d[4]))


def _op_to_data(op) -> list:
    if isinstance(op, AddParameter):
        return ["P", _span_to_data(op.span), op.function, op.name, op.default]
    return ["A", _span_to_data(op.span), op.keyword, op.value]


def _op_from_data(d: list):
    if d[0] == "P":
        return AddParameter(_span_from_data(d[1]), d[2], d[3], d[4])
    return AddArgument(_span_from_data(d[1]), d[2], d[3])


def _threading_to_data(t: Threading | None) -> list | None:
    if t is None:
        return None
    plan = None if t.plan is None else [_op_to_data(op) for op in t.plan]
    return [_span_to_data(t.target), t.function, t.parameter, t.default, [_op_to_data(op) for op in t.site], t.type_string, plan]


def _threading_from_data(d: list | None) -> Threading | None:
    if d is None:
        return None
    target, function, parameter, default, site, type_string, plan = d
    return Threading(
        _span_from_data(target), function, parameter, default, tuple(_op_from_data(op) for op in site), type_string,
        None if plan is None else tuple(_op_from_data(op) for op in plan),
    )


def finding_to_data(f: Finding) -> list:
    fix = None
    if f.fix is not None:
        edits = [[e.content, *astuple(e.location), *astuple(e.end_location), e.filename] for e in f.fix.edits]
        fix = [f.fix.applicability.value, f.fix.message, edits, _threading_to_data(f.fix.threading)]
    library = None if f.library is None else [f.library.name, f.library.version, f.library.source, f.library.python]
    return [f.code, f.message, f.filename, *astuple(f.location), *astuple(f.end_location), fix, f.noqa_row, list(f.notes), f.cell, library]


def astuple(loc: Location) -> tuple[int, int]:
    return (loc.row, loc.column)


def finding_from_data(d: list) -> Finding:
    code, message, filename, r1, c1, r2, c2, fix, noqa_row, notes, cell, library = d
    parsed_fix = None
    if fix is not None:
        grade, fix_message, edits, threading = fix
        parsed_fix = Fix(
            Applicability(grade),
            fix_message,
            tuple(Edit(e[0], Location(e[1], e[2]), Location(e[3], e[4]), e[5]) for e in edits),
            _threading_from_data(threading),
        )
    return Finding(
        code, message, filename, Location(r1, c1), Location(r2, c2), parsed_fix, noqa_row, cell, notes=tuple(notes),
        library=None if library is None else Library(*library),
    )


def facts_to_data(facts: project_index.FileFacts) -> dict:
    return asdict(facts)


def facts_from_data(d: dict) -> project_index.FileFacts:
    from devlint.static import index as project_index  # the static engine: a replayed run never reads facts
    from devlint.static.defaults import default_from_data

    return project_index.FileFacts(
        defaults=[default_from_data(x) for x in d["defaults"]],
        definitions=list(d.get("definitions", [])),
        process_groups=[tuple(pg) for pg in d.get("process_groups", [])],
        forwards=[project_index.Forward(**{**x, "also": tuple(x.get("also", ()))}) for x in d.get("forwards", [])],
        unused=[tuple(u) for u in d.get("unused", [])],
        type_sinks=[project_index.TypeSink(**{**x, "span": tuple(x["span"])}) for x in d["type_sinks"]],
        type_string_calls=[project_index.TypeStringCall(**x) for x in d["type_string_calls"]],
        kernels=[project_index.Kernel(**x) for x in d.get("kernels", [])],
        maskers=list(d.get("maskers", [])),
        extensions=[project_index.Extension(**{**x, "sources": tuple(x["sources"])}) for x in d.get("extensions", [])],
        bases=[tuple(b) for b in d.get("bases", [])],
        saves=[tuple(s) for s in d.get("saves", [])],
        returns=[tuple(r) for r in d.get("returns", [])],
        device_params=[tuple(r) for r in d.get("device_params", [])],
        provider_lists=list(d.get("provider_lists", [])),
        workers=[(w, tuple(owned)) for w, owned in d.get("workers", [])],
        process_group_functions=[tuple(p) for p in d.get("process_group_functions", [])],
        taken=list(d.get("taken", [])),
        aliases=dict(d.get("aliases", {})),
        inherits_init=list(d.get("inherits_init", [])),
        kwargs_to_base=[(cls, tuple(named)) for cls, named in d.get("kwargs_to_base", [])],
        device_setters=list(d.get("device_setters", [])),
        setup_calls=[(function, tuple(calls)) for function, calls in d.get("setup_calls", [])],
    )


def _moved(f: Finding, display: str) -> Finding:
    """A cached finding of the same content at another path (a copy, a rename)."""
    if f.filename != display and f.fix is not None and f.fix.threading is not None:
        old, t = f.filename, f.fix.threading

        def move(span: Span) -> Span:
            return Span(display, span.start, span.end) if span.filename == old else span

        site = tuple(replace(op, span=move(op.span)) for op in t.site)
        f.fix = replace(f.fix, threading=replace(t, target=move(t.target), site=site))
    f.filename = display
    return f


class Cache:
    """What a previous run learnt, by file content; `save()` keeps only what this run used."""

    def __init__(self, root: Path, header: str, enabled: bool = True):
        self.path = root / DIRECTORY / _FILE
        self.header = header
        self.enabled = enabled
        self._old: dict[str, dict] = {}
        self._new: dict[str, dict] = {}
        self._project: dict = {}  # the project-wide stages' last output, and its inputs' digest
        self._dirty = False  # something to write: new results, or entries no longer used
        if enabled:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("header") == header:
                    self._old = data.get("files", {})
                    self._project = data.get("project", {})
            except (OSError, ValueError, AttributeError):
                pass

    def _known(self, key: str) -> dict:
        """What this run or the last one holds for this content, without keeping it."""
        return self._new.get(key) or self._old.get(key) or {}

    def _entry(self, key: str) -> dict:
        entry = self._new.get(key)
        if entry is None:
            entry = self._new[key] = dict(self._old.get(key, {}))
        return entry

    def facts(self, key: str) -> project_index.FileFacts | None:
        data = self._old.get(key, {}).get("facts") if key not in self._new else self._new[key].get("facts")
        if data is None:
            return None
        self._entry(key)  # keep it
        return facts_from_data(data)

    def store_facts(self, key: str, facts: project_index.FileFacts) -> None:
        self._entry(key)["facts"] = facts_to_data(facts)
        self._dirty = True

    def text_fact(self, key: str, kind: str):
        """A fact read from this content's text without parsing it, when known: whether it was
        worth collecting facts from ("collect"), the library names it uses ("uses"), the names
        it takes from other modules ("takes"), what it re-exports ("exports")."""
        return self._known(key).get(kind)

    def store_text_fact(self, key: str, kind: str, value) -> None:
        """Keep a text fact (a JSON value: lists, not tuples, so that it compares equal when read back)."""
        entry = self._entry(key)
        if entry.get(kind) != value:
            entry[kind] = value
            self._dirty = True

    @classmethod
    def disabled(cls) -> Cache:
        return cls(Path("."), "", enabled=False)

    def mentions(self, key: str, triggers: str) -> bool | None:
        """Whether this content mentioned a trigger of the run that stored it, if that run
        had the same triggers (`triggers`: their digest): a warm run need not search again."""
        entry = self._known(key)
        return entry.get("checked") if entry.get("triggers") == triggers else None

    def holds_findings(self, key: str) -> bool:
        """Are findings of this content held, from this run or the last (valid or not)?"""
        return "findings" in self._known(key)

    def findings(self, key: str, display: str, index: project_index.ProjectIndex, checked: bool) -> list[Finding] | None:
        """Cached findings of this content, if still valid (`checked`: whether the rules ran,
        or only the parser, because no rule could fire on it)."""
        entry = self._known(key)
        if not entry or "findings" not in entry or entry.get("checked") != checked:
            return None
        deps = entry.get("deps", {})
        if any(index.digest(dep) != digest for dep, digest in deps.items()):
            return None
        self._entry(key)
        return [_moved(finding_from_data(d), display) for d in entry["findings"]]

    def store_findings(self, key: str, findings: list[Finding], deps: dict[str, str], checked: bool, triggers: str) -> None:
        entry = self._entry(key)
        entry["findings"] = [finding_to_data(f) for f in findings]
        entry["deps"] = deps
        entry["checked"] = checked
        entry["triggers"] = triggers
        self._dirty = True

    def project_findings(self, digest: str) -> tuple[list[Finding], dict, dict] | None:
        """The findings after the project-wide stages (selected, thread) of the last run whose
        file stages found the same (digest), with what those stages read: the files (see
        ProjectCalls.reads) and the index entries. The caller checks that they are unchanged."""
        if not self.enabled or self._project.get("digest") != digest:
            return None
        try:
            findings = [finding_from_data(d) for d in self._project["findings"]]
            return findings, self._project["reads"], self._project["index"]
        except (KeyError, TypeError, ValueError):
            return None

    def store_project_findings(self, digest: str, findings: list[Finding], reads: dict, index: dict[str, str]) -> None:
        project = {"digest": digest, "findings": [finding_to_data(f) for f in findings], "reads": reads, "index": index}
        if project != self._project:
            self._project = project
            self._dirty = True

    def files_read(self) -> set[str]:
        """The files outside the checked ones that this run's results read (the index's
        `file:` entries: an extension's C++/CUDA sources), by the path they were read at."""
        deps = [dep for entry in self._new.values() for dep in entry.get("deps", {})]
        deps += list(self._project.get("index", {}))
        return {dep.partition(":")[2] for dep in deps if dep.startswith("file:")}

    def save(self) -> None:
        """Write the entries this run used, unless they are exactly what was read."""
        if not self.enabled or not (self._dirty or self._new.keys() != self._old.keys()):
            return
        import tempfile

        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            gitignore = directory / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("# Created by devlint.\n*\n")
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".results.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # dumps, not dump: json.dump encodes in Python, piece by piece (a tenth of a run after an edit)
                handle.write(json.dumps({"header": self.header, "files": self._new, "project": self._project}, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only tree still gets checked, just not cached


def clean(root: Path) -> bool:
    """Remove `.devlint_cache/` under root; True if there was one."""
    import shutil

    target = root / DIRECTORY
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        return True
    return False
