"""Installed distributions: which one provides an import name, at which version.

Read with `importlib.metadata` from the environment's site-packages directories (its
`*.dist-info` METADATA, top_level.txt and RECORD), never from the running interpreter's
own: devlint may lint for another environment than the one it runs in.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a distribution is looked up: a run without one never needs it
    from importlib import metadata

_TORCH = re.compile(r"\s*torch\s*(?:[<>=!~;\[(@]|$)", re.I)


@dataclass(frozen=True)
class Distribution:
    name: str  # as its METADATA spells it: "face-alignment"
    version: str
    site_dir: str  # the site-packages directory holding its files
    # Does it declare torch among its requirements (an extra too), or no requirement at all?
    # Only such a library can put work on a CUDA device through torch: others are not read.
    may_use_torch: bool = True


class Distributions:
    """Import name -> Distribution, for one environment; each name looked up once."""

    def __init__(self, site_dirs: tuple[str, ...], remembered: dict | None = None):
        """`remembered`: earlier answers, {site: {"stamp": its mtime, "tops": {name:
        [name, version, may_use_torch] or None}}}, updated in place (the library cache
        keeps it): installing, upgrading or removing a package renames a `.dist-info`
        directory, which changes the site directory's mtime and drops its answers. A warm
        run then reads no METADATA at all."""
        self.site_dirs = site_dirs
        self._by_import: dict[str, Distribution | None] = {}
        self.remembered = {} if remembered is None else remembered
        self.changed = False
        # The files and directories whose state decided an answer: each path tested and its
        # directory (a file created or removed there changes the directory's stamp).
        self.looked: set[str] = set()

    def isfile(self, path: str) -> bool:
        """os.path.isfile, remembered in `looked`."""
        self.looked.update((path, os.path.dirname(path)))
        return os.path.isfile(path)

    def source_dir(self, top: str) -> str | None:
        """The site directory holding the package or module `top` as source (a `.py`)."""
        for site in self.site_dirs:
            if self.isfile(os.path.join(site, top, "__init__.py")) or self.isfile(os.path.join(site, top + ".py")):
                return site
        return None

    def of(self, top: str) -> Distribution | None:
        """The distribution that installs the top-level import name `top`: the one named
        like it when its files say so (most), else the first whose files hold it."""
        if top not in self._by_import:
            site = self.source_dir(top)
            self._by_import[top] = self._recalled(top, site) if site else None
        return self._by_import[top]

    def _recalled(self, top: str, site: str) -> Distribution | None:
        try:
            stamp = os.stat(site).st_mtime_ns
        except OSError:
            return None
        known = self.remembered.get(site)
        if known is None or known.get("stamp") != stamp:
            known = self.remembered[site] = {"stamp": stamp, "tops": {}}
        if top in known["tops"]:
            held = known["tops"][top]
            return None if held is None else Distribution(held[0], held[1], site, held[2])
        found = self._find(top, site)
        known["tops"][top] = None if found is None else [found.name, found.version, found.may_use_torch]
        self.changed = True
        return found

    def _find(self, top: str, site: str) -> Distribution | None:
        from importlib import metadata

        for dist in metadata.distributions(name=top, path=[site]):
            if top in _top_levels(dist):
                return _describe(dist, site)
        dist = self._all(site).get(top)
        return None if dist is None else _describe(dist, site)

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one Distributions per run
    def _all(self, site: str) -> dict[str, metadata.Distribution]:
        """Every distribution in `site` by the names it installs (its METADATA is parsed
        only for the one asked for)."""
        from importlib import metadata

        found: dict[str, metadata.Distribution] = {}
        for dist in metadata.distributions(path=[site]):
            for name in _top_levels(dist):
                found.setdefault(name, dist)
        return found


def _describe(dist: metadata.Distribution, site: str) -> Distribution | None:
    name, version = dist.metadata["Name"], dist.version
    if not (name and version):
        return None
    requires = dist.requires or []
    may_use_torch = not requires or any(_TORCH.match(r) for r in requires)
    return Distribution(name, version, site, may_use_torch)


def _top_levels(dist: metadata.Distribution) -> set[str]:
    """Top-level import names: top_level.txt, else the first part of each RECORD path."""
    declared = dist.read_text("top_level.txt")
    if declared:
        return {line.strip() for line in declared.splitlines() if line.strip()}
    names = set()
    for line in (dist.read_text("RECORD") or "").splitlines():  # torch's has 10k lines: no PackagePath each
        path = line.split(",", 1)[0]
        first, sep, _ = path.partition("/")
        if first.endswith(".py") and not sep:
            names.add(first[:-3])
        elif sep and first and "." not in first:
            names.add(first)
    return names
