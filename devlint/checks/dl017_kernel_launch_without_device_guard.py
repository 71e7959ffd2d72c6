"""DL017: a Triton kernel launched on the current device while its tensors may be elsewhere."""

from __future__ import annotations

import ast

from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check


class KernelLaunchWithoutDeviceGuard(Check):
    code = "DL017"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "triton") or runtimes.mentions_kernel(ctx)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if not isinstance(node.func, ast.Subscript):
            return
        kernel = runtimes.launched_kernel(node, ctx)
        if kernel is None or kernel[1] != "triton":
            return
        if runtimes.current_device_set(ctx, node) or runtimes.devices_masked(ctx):
            return
        message = (
            f"Triton kernel `{kernel[0]}` launches on the current CUDA device (GPU0 unless set_device chose another), "
            "not on its tensors' device: with tensors on cuda:1 it runs from GPU0 or fails"
        )
        ctx.report(self.code, node, message, self._fix(node, ctx))

    def _fix(self, node: ast.Call, ctx: FileContext):
        return runtimes.guard_fix(self.code, node, ctx)


CHECK = KernelLaunchWithoutDeviceGuard()
