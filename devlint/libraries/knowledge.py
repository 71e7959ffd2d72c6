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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devlint.findings import Library
from devlint.libraries import imports
from devlint.libraries.cache import DistributionCache, DistributionsCache
from devlint.libraries.distributions import Distribution, Distributions
from devlint.libraries.environment import Environment

if TYPE_CHECKING:
    from devlint.static.defaults import Default

MAX_FILES = 64  # library files read per run: the names a project uses rarely reach 20
_MAX_STEPS = 512  # names followed per run


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
            from devlint.static import index as project_index

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
        # The static engine, imported here: a run replayed from its record (check/replay.py)
        # reads no library and never needs it.
        from devlint.libraries.combine import Combined
        from devlint.static import index as project_index

        reader = _Reader(self._distributions, project_tops, self.use_cache)
        for name in sorted(used):
            reader.want(name)
        reader.run()
        if self._distributions.changed:
            self._lookups.save()
            self._distributions.changed = False
        entries = Combined(reader, self.environment.python).entries(sorted(used))
        self.read = {lib.name: lib for lib in reader.libraries(self.environment.python)}
        tables = tuple(d for d in project_index._library_defaults() if not self._installed(d.qualname.split(".")[0]))
        return tuple(entries) + tables

    @property
    def looked(self) -> set[str]:
        """The files and directories whose state decided what was read from the environment
        (Distributions.looked): a replayed run checks that none of them changed."""
        return self._distributions.looked if self._distributions is not None else set()

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
        isfile = self.distributions.isfile
        path = os.path.join(base, "__init__.py") if isfile(os.path.join(base, "__init__.py")) else base + ".py"
        if not isfile(path):
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
