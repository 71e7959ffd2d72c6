"""DL015: a TensorRT engine built or deserialized on the current CUDA device."""

from __future__ import annotations

import ast

from devlint import catalog
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.scope import _shallow


class TensorrtCurrentDevice(Check):
    code = "DL015"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "tensorrt", "polygraphy", "create_execution_context")

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else None
        if self._makes_engine(node, ctx):
            shown = f"{method}(...)" if method in catalog.api(self.code, "engine_methods", []) else f"{ctx.text(func)}(...)"
            what = "puts the TensorRT engine"
        elif method in catalog.api(self.code, "context_methods", []):
            if self._engine_made_before(node, ctx):
                return  # one finding for the engine and its context: the fix guards both
            shown, what = f"{method}(...)", "allocates the engine's execution context"
        elif ctx.qualname(func) in catalog.api(self.code, "streams", []):
            shown, what = f"{ctx.text(func)}(...)", "creates its CUDA stream"
        else:
            return
        if runtimes.current_device_set(ctx, node) or runtimes.devices_masked(ctx):
            return
        message = (
            f"`{shown}` {what} on the current CUDA device (GPU0 unless set_device chose another), "
            "not on the device the program was told to use"
        )
        ctx.report(self.code, node, message, ctx.display_only(self.code, self._advice(node, ctx)))

    def _engine_made_before(self, node: ast.Call, ctx: FileContext) -> bool:
        """Does the same function (or module) make an engine before `node`? That call is
        reported, and its fix takes in the context."""
        scope = ctx.scope.function or ctx.module_scope
        return any(
            isinstance(call, ast.Call) and call.lineno < node.lineno and self._makes_engine(call, ctx)
            for call in _shallow(scope.body)
        )

    def _makes_engine(self, call: ast.Call, ctx: FileContext) -> bool:
        """`runtime.deserialize_cuda_engine(...)`, or a catalog constructor (`trt.Builder`,
        polygraphy's `engine_from_bytes`)."""
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in catalog.api(self.code, "engine_methods", []):
            return True
        return ctx.qualname(func) in catalog.api(self.code, "constructors", [])

    def _advice(self, node: ast.Call, ctx: FileContext) -> str:
        found = ctx.suggest_device(node)
        index = runtimes.gpu_index(ctx, node) if found is None else None
        device = found.expr if found is not None else index.expr if index is not None and index.simple else "index"
        return (
            f"build or load the engine, and run it, with its GPU current: `with torch.cuda.device({device}):` around this "
            "call, `create_execution_context()` and every `execute_*` call (an engine runs only on the device it was made on)"
        )


CHECK = TensorrtCurrentDevice()
