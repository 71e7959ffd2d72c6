"""DL029: a pinning DataLoader in code that chose a GPU without selecting it."""

from __future__ import annotations

import ast

from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import keyword

LOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})


class PinnedLoaderOnCurrentDevice(Check):
    code = "DL029"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if ctx.qualname(node.func) not in LOADERS:
            return
        pin = keyword(node, "pin_memory")
        if pin is None or not (isinstance(pin.value, ast.Constant) and pin.value.value is True):
            return
        if keyword(node, "pin_memory_device") is not None:
            return
        scope = ctx.scope.function or ctx.module_scope
        if scope.device_selected_at or ctx.device_selected_before(node):
            return  # the code selects its GPU: pinning uses that GPU's context
        chosen = ctx.suggest_device(node)
        if chosen is None:
            return  # no GPU chosen in reach: the current device may well be the one meant
        message = (
            f"`DataLoader(pin_memory=True)` where the code chose `{chosen.expr}` but never selected it: pinning needs "
            "a CUDA context and, when none exists yet, creates one on the current device (GPU0)"
        )
        fix = ctx.display_only(self.code, f"call `torch.cuda.set_device({chosen.expr})` before the loader pins a batch")
        ctx.report(self.code, node, message, fix)


CHECK = PinnedLoaderOnCurrentDevice()
