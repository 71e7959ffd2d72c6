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
            # The new parameter defaults to what the callee would have used, so a caller that
            # passes nothing gets what it got before.
            default = "None" if entry.none_means_cuda else entry.default
            without = f"pass `{entry.param}=` with the target device"
            if _is_literal(default):
                fix = ctx.thread_device(self.code, ctx.use_device_at(node, entry.param), without, default=default)
            else:
                fix = ctx.display_only(self.code, without)
        else:
            fix = ctx.fix(self.code, f"Pass `{entry.param}={found.expr}`", ctx.add_keyword(node, f"{entry.param}={found.expr}"))
        ctx.report(self.code, node, message, fix)


def _is_literal(text: str) -> bool:
    """A default that can be written in another module as it is (no name to import)."""
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return True


CHECK = ReliesOnCudaDefault()
