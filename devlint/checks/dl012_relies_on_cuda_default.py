"""DL012: a call that omits `device` where the callee's default is an unindexed CUDA device."""

from __future__ import annotations

import ast

from devlint.static.engine import Check
from devlint.static.context import FileContext
from devlint.static.names import argument, has_argument


class ReliesOnCudaDefault(Check):
    code = "DL012"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        entry = ctx.index.cuda_default(ctx.qualname(node.func))
        if entry is None:
            return
        if has_argument(node, entry.param, entry.position):
            given = argument(node, entry.param, entry.position)
            if not (entry.none_means_cuda and isinstance(given, ast.Constant) and given.value is None):
                return
        if any(has_argument(node, other, None) for other in entry.also):
            return
        if ctx.device_selected_before(node):
            return
        name = ctx.text(node.func)
        message = (
            f"`{name}(...)` omits `{entry.param}`, which defaults to {entry.default} ({entry.where}): "
            "the current device, GPU0 unless set_device chose another"
        )
        found = ctx.suggest_device(node)
        if found is None:
            fix = ctx.display_only(self.code, f"pass `{entry.param}=` with the target device")
        else:
            fix = ctx.fix(self.code, f"Pass `{entry.param}={found.expr}`", ctx.add_keyword(node, f"{entry.param}={found.expr}"))
        ctx.report(self.code, node, message, fix)


CHECK = ReliesOnCudaDefault()
