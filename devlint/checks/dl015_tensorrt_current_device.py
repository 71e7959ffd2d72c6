"""DL015: a TensorRT engine built or deserialized on the current CUDA device."""

from __future__ import annotations

import ast

from devlint import catalog
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check


class TensorrtCurrentDevice(Check):
    code = "DL015"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "tensorrt")

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in catalog.api(self.code, "engine_methods", []):
            shown = f"{func.attr}(...)"
        elif ctx.qualname(func) in catalog.api(self.code, "constructors", []):
            shown = f"{ctx.text(func)}(...)"
        else:
            return
        if runtimes.current_device_set(ctx, node) or runtimes.devices_masked(ctx):
            return
        message = (
            f"`{shown}` puts the TensorRT engine on the current CUDA device (GPU0 unless set_device chose another), "
            "not on the device the program was told to use"
        )
        ctx.report(self.code, node, message, ctx.display_only(self.code, self._advice(node, ctx)))

    def _advice(self, node: ast.Call, ctx: FileContext) -> str:
        found = ctx.suggest_device(node)
        index = runtimes.gpu_index(ctx, node) if found is None else None
        device = found.expr if found is not None else index.expr if index is not None and index.simple else "index"
        return (
            f"build or load the engine, and run it, with its GPU current: `with torch.cuda.device({device}):` around this "
            "call, `create_execution_context()` and every `execute_*` call (an engine runs only on the device it was made on)"
        )


CHECK = TensorrtCurrentDevice()
