"""DL007: `nn.DataParallel(model)` without `device_ids` uses every GPU and gathers on GPU0."""

from __future__ import annotations

import ast

from devlint import catalog
from devlint.static.engine import Check
from devlint.findings import Applicability
from devlint.static.context import FileContext
from devlint.static.names import has_argument


class DataParallelWithoutDeviceIds(Check):
    code = "DL007"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        if name not in catalog.api(self.code, "wrappers", []):
            return
        if has_argument(node, "device_ids", 1):
            return
        short = name.rsplit(".", 1)[-1]
        message = (
            f"`{short}(...)` without `device_ids` replicates onto every visible GPU and gathers "
            "outputs on GPU0 (`device_ids[0]`)"
        )
        index = ctx.suggest_index(node)
        if index is None:
            fix = ctx.display_only(self.code)
        else:
            fix = ctx.fix(
                self.code,
                f"Pass `device_ids=[{index}], output_device={index}`",
                ctx.add_keyword(node, f"device_ids=[{index}], output_device={index}"),
                applicability=Applicability.UNSAFE,
            )
        ctx.report(self.code, node, message, fix)


CHECK = DataParallelWithoutDeviceIds()
