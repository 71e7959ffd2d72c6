"""The library summaries a run read, combined into entries of the project index.

Apart from knowledge.py's reader so that a run that reads no library (one replayed from its
record) does not import the static engine these entries belong to.
"""

from __future__ import annotations

from dataclasses import replace

from devlint.findings import Library
from devlint.static import index as project_index
from devlint.static.defaults import CURRENT_DEVICE, Default, Forward, default_from_data

_ROUNDS = 6  # calls followed when one definition drops the device another was given


class Combined:
    """The summaries read, combined into index entries (nothing here reads a file)."""

    def __init__(self, reader, python: str):  # reader: knowledge._Reader, after its run
        self.reader = reader
        self.python = python
        self.owner: dict = {}  # definition -> its module (knowledge._Module)
        facts = []
        for module in (m for m in reader.modules.values() if m is not None):
            found = module.summary["facts"]
            facts.append(project_index.FileFacts(
                defaults=[default_from_data(d) for d in found["defaults"]],
                forwards=[Forward(**f) for f in found["forwards"]],
                unused=[tuple(u) for u in found["unused"]],
            ))
            for qualname in module.summary["definitions"]:
                self.owner[qualname] = module
            for d in found["defaults"]:
                self.owner.setdefault(d["qualname"], module)
        self.index = project_index.ProjectIndex(facts, library=())
        self._why: dict[str, str] = {}  # regardless(): definitions that drop a given device
        self._through: dict[str, list[str]] = {}  # and the definitions that say so, outermost first

    def _origin(self, name: str, depth: int = 0) -> str:
        """The definition an imported name stands for."""
        sources = self.reader.aliases.get(name)
        if not sources or depth > _ROUNDS:
            return name
        for source in sources:
            origin = self._origin(source, depth + 1)
            if origin in self.owner:
                return origin
        return name

    def _library(self, qualname: str) -> Library:
        dist = self.owner[qualname].dist
        return Library(dist.name, dist.version, "installed", self.python)

    def _where(self, qualname: str, where: str = "") -> str:
        """Which versions were read, every distribution a chain of calls went through
        ("gfpgan 1.3.8 and facexlib 0.2.5"), and where, when one file says it all."""
        dists = dict.fromkeys(f"{self.owner[q].dist.name} {self.owner[q].dist.version}" for q in self._through.get(qualname, [qualname]) if q in self.owner)
        return f"{' and '.join(dists)}, read from the installed source" + (f": {where}" if where else "")

    def regardless(self) -> dict[str, str]:
        """Definitions that land on the current device or GPU0 whatever device they are
        given, and why, to a fixed point over the calls between them."""
        records = {q: m.summary["definitions"][q] for q, m in sorted(self.owner.items()) if q in m.summary["definitions"]}
        why = self._why
        for qualname, record in records.items():
            if record["fixed"]:
                line, text = record["fixed"][0]
                file = record["where"].rsplit(":", 1)[0]
                why[qualname] = f"puts its work on a device the library fixes, the current device: `{text}` ({file}:{line})"
                self._through[qualname] = [qualname]
        for _ in range(_ROUNDS):
            added = False
            for qualname, record in records.items():
                if qualname in why:
                    continue
                found = self._drops(record)
                if found is not None:
                    why[qualname], callee = found
                    self._through[qualname] = [qualname, *self._through.get(callee, [callee])]
                    added = True
            if not added:
                break
        return why

    def _drops(self, record: dict) -> tuple[str, str] | None:
        """Why a definition drops the device it is given, and the callee it drops it in."""
        file = record["where"].rsplit(":", 1)[0]
        for callee, line, positional, keywords, star, text in record["calls"]:
            origin = self._origin(callee)
            if origin in self._why:
                return f"calls `{text}` ({file}:{line}), which {self._why[origin]}", origin
            if star:
                continue
            for entry in self.index.cuda_defaults(origin):
                passed = entry.param in keywords or (entry.position is not None and positional > entry.position)
                if not passed and not any(other in keywords for other in entry.also):
                    return f"calls `{text}` without `{entry.param}` ({file}:{line}), which defaults to {entry.default}: {entry.means}", entry.qualname
        return None

    def entries(self, used: list[str]) -> list[Default]:
        """Index entries for the names the project uses, under the names it uses."""
        self.regardless()
        out: list[Default] = []
        for name in used:
            origin = self._origin(name)
            if origin not in self.owner:
                continue
            if origin in self._why:
                record = self.owner[origin].summary["definitions"][origin]
                param = next((p for p in record["params"] if "device" in p), "device")
                out.append(Default(
                    name, param, None, "", self._where(origin), ignores=f"lands on the current device whatever `{param}` it is given: it {self._why[origin]}",
                    means=CURRENT_DEVICE, library=self._library(origin),
                ))
            for entry in self.index.cuda_defaults(origin):
                out.append(replace(entry, qualname=name, where=self._where(origin, entry.where), library=self._library(origin)))
        return out
