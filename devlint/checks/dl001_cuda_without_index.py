"""DL001: `.cuda()` with no device moves data to the current device."""

from __future__ import annotations

import ast

from devlint.findings import Applicability
from devlint.static import guards
from devlint.static.context import FileContext
from devlint.static.engine import Callees, Check
from devlint.static.names import argument
from devlint.static.placement import unplaced_factory


class CudaWithoutIndex(Check):
    code = "DL001"

    def callees(self) -> Callees:
        return Callees(frozenset({"cuda"}), names=False)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr != "cuda" or ctx.qualname(func):
            return
        device = argument(node, "device", 0)
        if device is not None and not (isinstance(device, ast.Constant) and device.value is None):
            return  # an explicit device: DL008 judges `.cuda(0)`
        if "DL011" in ctx.enabled and unplaced_factory(ctx, func.value) is not None:
            return  # DL011 reports the factory, with a better fix (asked first: the cheapest, and DL011 asks it too)
        if ctx.device_selected_before(node):
            return
        if _input_fallback(func.value, node, ctx) or guards.only_when(ctx.path_to(node), guards.says_chose_current, lambda test: False):
            return  # a move the caller's own tensor or device choice asked for
        receiver = ctx.text(func.value)
        if len(receiver) > 40:
            receiver = receiver[:37] + "..."
        message = f"`{receiver}.cuda()` moves to the current CUDA device (GPU0 unless set_device or CUDA_VISIBLE_DEVICES chose another)"
        ctx.report(self.code, node, message, self._fix(node, ctx))

    def _fix(self, node: ast.Call, ctx: FileContext):
        found = ctx.suggest_device(node)
        index = ctx.suggest_index(node) if found is None else None
        if index is not None:
            # A distributed script's rank: `.cuda(local_rank)` (unsafe: -1 outside torchrun).
            rest = [ctx.text(kw) for kw in node.keywords if kw.arg != "device"]
            new = f"cuda({', '.join([index, *rest])})"
            return ctx.fix(self.code, f"Replace `.cuda()` with `.{new}`", ctx.replace_method(node, new), applicability=Applicability.UNSAFE)
        if found is None:
            # `.cuda(None)` is the current device, as before, for a caller that passes none.
            return ctx.thread_device(
                self.code, ctx.use_device_at(node, None), "pass the target device: `.cuda(device)`, with `device` threaded in from the callers"
            )
        rest = [ctx.text(kw) for kw in node.keywords if kw.arg != "device"]
        new = f"to({', '.join([found.expr, *rest])})"
        grade = None if found.local else Applicability.UNSAFE
        return ctx.fix(self.code, f"Replace `.cuda()` with `.{new}`", ctx.replace_method(node, new), applicability=grade)


def _input_fallback(receiver: ast.expr, node: ast.Call, ctx: FileContext) -> bool:
    """`if not x.is_cuda: x = x.cuda()` on a parameter: the move runs only for a caller that
    passed a CPU tensor, to a function written for GPU tensors (a CUDA op's wrapper). A
    caller that passes its tensor on its device never reaches it, and the callers' tensors
    are where their device is chosen."""
    function = ctx.scope.function
    if not (isinstance(receiver, ast.Name) and function is not None and receiver.id in function.params):
        return False
    return guards.only_off_gpu(ctx.path_to(node), receiver.id)


CHECK = CudaWithoutIndex()
