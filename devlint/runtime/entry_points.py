"""Library entry points that take their own device option (the catalog's DL012 `entry_points`).

When the user's line that leaked called `from_pretrained`, `pipeline`, `enable_*_cpu_offload`,
..., the useful fix is that API's own option with the run's allowed device
(`device_map={"": "cuda:1"}`), not a generic "use cuda:1". The entry point is the outermost
library frame under the user's line: the function the user called.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from devlint import catalog
from devlint.runtime.attribution import Frame, package_of


class Option(NamedTuple):
    call: str  # the called name as the user's line spells it: `from_pretrained`
    keyword: str  # the option: `device_map`
    value: str  # Python source for the allowed device in that option's form

    def suggestion(self) -> str:
        return f"pass `{self.keyword}={self.value}` to `{self.call}()`, the API's own option for its device"

    def to_json(self) -> dict:
        return {"call": self.call, "keyword": self.keyword, "value": self.value}


@functools.lru_cache(maxsize=None)
def _table() -> tuple[tuple[str, tuple[str, ...], str, str], ...]:
    """(package, qualified-name parts, option, value template) per catalog entry."""
    entries = []
    for entry in catalog.api("DL012", "entry_points", []):
        package, _, name = entry["name"].partition(".")
        entries.append((package, tuple(name.split(".")), entry["option"], entry["value"]))
    return tuple(entries)


def option_for(entry: Frame | None, allowed_first: str) -> Option | None:
    """The option of the library function `entry` runs (an outermost library frame), with
    `allowed_first` ("cuda:1" or "cpu") written in; None when the catalog does not know it."""
    if entry is None:
        return None
    package = package_of(entry.filename)
    qualname = tuple(entry.function.replace(".<locals>", "").split("."))
    for wanted, parts, keyword, template in _table():
        if package == wanted and qualname[-len(parts) :] == parts:
            if "{index}" in template:
                if not allowed_first.startswith("cuda:"):
                    return None  # an index option cannot say "cpu"
                value = template.replace("{index}", allowed_first.split(":", 1)[1])
            else:
                value = template.replace("{device}", repr(allowed_first).replace("'", '"'))
            return Option(parts[-1], keyword, value)
    return None
