"""What the libraries a project imports do with devices, read from their installed source.

For the names the project imports from third-party modules, the files that define them
are found in the environment's site-packages and summarised (summary.py, cached by
distribution and version in cache.py), following only what those definitions call or
re-export, within a bound. The summaries are then combined, in memory, into entries of
the project index (static/defaults.Default):

- a callable whose device parameter defaults to the current device or GPU0, as for a
  definition in the project (the same collection, static/index.py), so a call that
  omits it is flagged;
- a callable that lands on such a device *whatever device it is given*: it puts its work
  on a device fixed in the library, or calls one that does, or calls one that defaults to
  CUDA without passing a device on (facexlib 0.2.5's `init_detection_model` builds
  `RetinaFace(...)` without it, and that `RetinaFace` moves itself to a module-level
  `device = torch.device('cuda' ...)`). Such a call is flagged even with `device=`.

Each entry names the distribution and version it was read from. A library that is not
installed falls back to the catalog's hand table (rules/DL012-*.toml), whose entries say
which versions they describe; `libraries = "tables"` uses the tables only.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, replace

from devlint.findings import Library
from devlint.libraries import imports
from devlint.libraries.cache import DistributionCache, DistributionsCache
from devlint.libraries.distributions import Distribution, Distributions
from devlint.libraries.environment import Environment
from devlint.static import index as project_index
from devlint.static.defaults import CURRENT_DEVICE, Default, Forward

MAX_FILES = 64  # library files read per run: the names a project uses rarely reach 20
_MAX_STEPS = 512  # names followed per run
_ROUNDS = 6  # calls followed when one definition drops the device another was given


class Libraries:
    """Library knowledge for one run: `mode` "installed" reads the environment (tables for
    what is not installed), "tables" only the catalog's tables."""

    def __init__(self, environment: Environment | None, mode: str = "installed", use_cache: bool = True):
        self.environment = environment if mode == "installed" else None
        self.mode = mode
        self.use_cache = use_cache
        self._lookups = DistributionsCache(enabled=use_cache) if self.environment else None
        self._distributions = Distributions(environment.site_dirs, self._lookups.remembered) if self.environment else None
        self.read: dict[str, Library] = {}  # distributions whose source was read, by name
        self._memo: dict[tuple, tuple[Default, ...]] = {}

    def defaults_for(self, used: set[str], tops: set[str]) -> tuple[Default, ...]:
        """`defaults`, computed once per run for the same names (the fix stage re-indexes)."""
        if self._distributions is None:
            return project_index._library_defaults()
        key = (frozenset(used), frozenset(tops))
        if key not in self._memo:
            self._memo[key] = self.defaults(used, tops)
        return self._memo[key]

    def describe(self) -> dict:
        """Which environment was read, for the output (SARIF run properties)."""
        environment = self.environment
        return {
            "libraries": self.mode,
            "python": environment.python if environment else None,
            "chosen_by": environment.chosen_by if environment else None,
            "read": [lib.to_json() for lib in self.read.values()],
        }

    def defaults(self, used: set[str], project_tops: set[str]) -> tuple[Default, ...]:
        """Index entries for the library names `used` by a project whose own top-level
        packages are `project_tops` (never read as a library)."""
        reader = _Reader(self._distributions, project_tops, self.use_cache)
        for name in sorted(used):
            reader.want(name)
        reader.run()
        if self._distributions.changed:
            self._lookups.save()
            self._distributions.changed = False
        entries = _Combined(reader, self.environment.python).entries(sorted(used))
        self.read = {lib.name: lib for lib in reader.libraries(self.environment.python)}
        tables = tuple(d for d in project_index._library_defaults() if not self._installed(d.qualname.split(".")[0]))
        return tuple(entries) + tables

    def _installed(self, top: str) -> bool:
        return self._distributions.of(top) is not None


@dataclass(frozen=True)
class _Module:
    name: str
    dist: Distribution
    summary: dict  # summary.summarise's


class _Reader:
    """Finds and summarises the library files the wanted names lead to."""

    def __init__(self, distributions: Distributions, project_tops: set[str], use_cache: bool):
        self.distributions = distributions
        self.project_tops = project_tops
        self.use_cache = use_cache
        self.modules: dict[str, _Module | None] = {}
        self.aliases: dict[str, list[str]] = {}  # a name -> the names it is imported from
        self._queue: deque[str] = deque()
        self._seen: set[str] = set()
        self._caches: dict[tuple[str, str], DistributionCache] = {}
        self.files_read = 0

    def want(self, name: str) -> None:
        top = name.split(".")[0]
        if name in self._seen or top in self.project_tops or imports.skipped(top):
            return
        self._seen.add(name)
        self._queue.append(name)

    def run(self) -> None:
        steps = 0
        while self._queue and steps < _MAX_STEPS:
            steps += 1
            self._follow(self._queue.popleft())
        for cache in self._caches.values():
            cache.save()

    def _follow(self, name: str) -> None:
        """Read the module defining `name` (the longest prefix that is a module), and want
        what its definition calls, or the name it is imported from."""
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = self._module(".".join(parts[:cut]))
            if module is not None:
                break
        else:
            return
        local, found = parts[cut], module.summary
        defined = f"{module.name}.{local}"
        if cut + 1 < len(parts):  # `Class.method`, `module.function`: the definition holding it
            self.want(defined)
        elif defined in found["definitions"]:
            for callee, *_ in found["definitions"][defined]["calls"]:
                self.want(callee)
        elif local in found["imports"]:
            self._alias(defined, found["imports"][local])
        elif local not in found["names"]:
            for star in found["stars"]:
                self._alias(defined, f"{star}.{local}")

    def _alias(self, name: str, source: str) -> None:
        self.aliases.setdefault(name, []).append(source)
        self.want(source)

    def _module(self, module: str) -> _Module | None:
        if module in self.modules:
            return self.modules[module]
        self.modules[module] = None
        dist = self.distributions.of(module.split(".")[0])
        if dist is None or not dist.may_use_torch:
            return None
        base = os.path.join(dist.site_dir, *module.split("."))
        path = os.path.join(base, "__init__.py") if os.path.isfile(os.path.join(base, "__init__.py")) else base + ".py"
        if not os.path.isfile(path):
            return None
        cache = self._cache(dist)
        found = cache.get(module, path)
        if found is None:
            if self.files_read >= MAX_FILES:
                return None
            self.files_read += 1
            found = _summarise(path, os.path.relpath(path, dist.site_dir).replace(os.sep, "/"), module)
            cache.put(module, path, found)
        self.modules[module] = _Module(module, dist, found)
        return self.modules[module]

    def _cache(self, dist: Distribution) -> DistributionCache:
        key = (dist.name, dist.version)
        if key not in self._caches:
            self._caches[key] = DistributionCache(dist, enabled=self.use_cache)
        return self._caches[key]

    def libraries(self, python: str) -> list[Library]:
        dists = {(m.dist.name, m.dist.version) for m in self.modules.values() if m is not None}
        return [Library(name, version, "installed", python) for name, version in sorted(dists)]


def _summarise(path: str, display: str, module: str) -> dict:
    from devlint.libraries import summary as summaries  # parsing machinery: only on a miss

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return summaries.empty()
    return summaries.summarise(data, display, module)


class _Combined:
    """The summaries read, combined into index entries (nothing here reads a file)."""

    def __init__(self, reader: _Reader, python: str):
        self.reader = reader
        self.python = python
        self.owner: dict[str, _Module] = {}  # definition -> its module
        facts = []
        for module in (m for m in reader.modules.values() if m is not None):
            found = module.summary["facts"]
            facts.append(project_index.FileFacts(
                defaults=[_default(d) for d in found["defaults"]],
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


def _default(data: dict) -> Default:
    return Default(**{**data, "also": tuple(data["also"]), "passes": tuple(tuple(p) for p in data["passes"]), "library": None})
