"""Library entry points that take their own device option (the `[[api.entry_points]]` rows
of the Hugging Face rules, DL021-DL025, which the static half reads too).

When the user's line that leaked called `from_pretrained`, `pipeline`, `enable_*_cpu_offload`,
..., the useful fix is that API's own option with the run's allowed device
(`device_map={"": "cuda:1"}`), not a generic "use cuda:1". The entry point is the outermost
library frame under the user's line: the function the user called.
"""

from __future__ import annotations

import fnmatch
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


# The rules whose entry points take a device option the runtime can write with the run's
# device, most specific first (a `pipeline` leak gets `device=`, not DL021's `device_map=`).
_RULES = ("DL022", "DL025", "DL024", "DL021")
# How each option spells a device: `{device}` is the allowed device as a string literal.
_FORMS = {"device_map": '{"": {device}}', "device": "{device}", "torch_device": "{device}"}


@functools.lru_cache(maxsize=None)
def _table() -> tuple[tuple[str, tuple[str, ...], tuple[str, ...], str, str], ...]:
    """(package, qualified-name patterns, method names, option, value template) per row of
    the static rules' `[[api.entry_points]]` (static/entry_points.py reads the same rows)."""
    entries = []
    for code in _RULES:
        for row in catalog.api(code, "entry_points", []):
            template = _FORMS.get(row["option"])
            if template is not None:
                names = tuple(row.get("names", ()))
                entries.append((row["library"], names, tuple(row.get("methods", ())), row["option"], template))
    return tuple(entries)


def option_for(entry: Frame | None, allowed_first: str) -> Option | None:
    """The option of the library function `entry` runs (an outermost library frame), with
    `allowed_first` ("cuda:1" or "cpu") written in; None when the catalog does not know it."""
    if entry is None:
        return None
    package = package_of(entry.filename)
    qualname = entry.function.replace(".<locals>", "")
    dotted = f"{package}.{qualname}"
    called = qualname.rsplit(".", 1)[-1]
    for library, names, methods, keyword, template in _table():
        if package == library and (called in methods or any(fnmatch.fnmatchcase(dotted, n) for n in names)):
            return Option(called, keyword, template.replace("{device}", repr(allowed_first).replace("'", '"')))
    return None
