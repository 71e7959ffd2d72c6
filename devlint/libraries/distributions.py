"""Installed distributions: which one provides an import name, at which version.

Read with `importlib.metadata` from the environment's site-packages directories (its
`*.dist-info` METADATA, top_level.txt and RECORD), never from the running interpreter's
own: devlint may lint for another environment than the one it runs in.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Distribution:
    name: str  # as its METADATA spells it: "face-alignment"
    version: str
    site_dir: str  # the site-packages directory holding its files


class Distributions:
    """Import name -> Distribution, for one environment; each name looked up once."""

    def __init__(self, site_dirs: tuple[str, ...]):
        self.site_dirs = site_dirs
        self._by_import: dict[str, Distribution | None] = {}

    def source_dir(self, top: str) -> str | None:
        """The site directory holding the package or module `top` as source (a `.py`)."""
        for site in self.site_dirs:
            if os.path.isfile(os.path.join(site, top, "__init__.py")) or os.path.isfile(os.path.join(site, top + ".py")):
                return site
        return None

    def of(self, top: str) -> Distribution | None:
        """The distribution that installs the top-level import name `top`: the one named
        like it when its files say so (most), else the first whose files hold it."""
        if top not in self._by_import:
            site = self.source_dir(top)
            self._by_import[top] = self._find(top, site) if site else None
        return self._by_import[top]

    def _find(self, top: str, site: str) -> Distribution | None:
        for dist in metadata.distributions(name=top, path=[site]):
            if top in _top_levels(dist):
                return _describe(dist, site)
        return self._all(site).get(top)

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one Distributions per run
    def _all(self, site: str) -> dict[str, Distribution]:
        found: dict[str, Distribution] = {}
        for dist in metadata.distributions(path=[site]):
            described = _describe(dist, site)
            if described is None:
                continue
            for name in _top_levels(dist):
                found.setdefault(name, described)
        return found


def _describe(dist: metadata.Distribution, site: str) -> Distribution | None:
    name, version = dist.metadata["Name"], dist.version
    return Distribution(name, version, site) if name and version else None


def _top_levels(dist: metadata.Distribution) -> set[str]:
    """Top-level import names: top_level.txt, else the first part of each RECORD path."""
    declared = dist.read_text("top_level.txt")
    if declared:
        return {line.strip() for line in declared.splitlines() if line.strip()}
    names = set()
    for file in dist.files or ():
        first = file.parts[0] if file.parts else ""
        if first.endswith(".py"):
            names.add(first[:-3])
        elif first and "." not in first and len(file.parts) > 1:
            names.add(first)
    return names
