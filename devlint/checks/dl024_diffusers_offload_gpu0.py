"""DL024: diffusers' CPU offload without `gpu_id`/`device`, or with `gpu_id=0`: cuda:0."""

from __future__ import annotations

import ast

from devlint.checks.omitted_option import OmittedOptionCheck
from devlint.static.context import FileContext
from devlint.static.entry_points import Chosen, EntryPoint


class DiffusersOffloadGpu0(OmittedOptionCheck):
    code = "DL024"

    def means_omitted(self, given: ast.expr) -> bool:
        # `gpu_id or torch_device.index or previous or 0` (pipeline_utils.py:1225, 1338)
        return isinstance(given, ast.Constant) and given.value == 0 and not isinstance(given.value, bool)

    def written(self, chosen: Chosen, entry: EntryPoint, ctx: FileContext) -> tuple[str, tuple]:
        if chosen.is_index:
            return f"{entry.index_option}={chosen.expr}", ()
        return f"{entry.option}={chosen.expr}", ()


CHECK = DiffusersOffloadGpu0()
