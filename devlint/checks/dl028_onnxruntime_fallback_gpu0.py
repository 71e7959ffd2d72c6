"""DL028: an ONNX Runtime session whose fallback drops its provider options, landing on GPU 0."""

from __future__ import annotations

import ast

from devlint import catalog
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument, keyword


class OnnxruntimeFallbackGpu0(Check):
    code = "DL028"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if ctx.qualname(node.func) not in catalog.api(self.code, "sessions", []):
            return
        if keyword(node, "enable_fallback") is not None or any(kw.arg is None for kw in node.keywords):
            return
        names = _provider_names(argument(node, "providers", 2), ctx)
        if not (names & set(catalog.api(self.code, "tensorrt", [])) and "CUDAExecutionProvider" in names):
            return
        if runtimes.devices_masked(ctx):
            return
        message = (
            "if the TensorRT provider fails to set up (or a run fails in it), ONNX Runtime retries with "
            "`[\"CUDAExecutionProvider\", \"CPUExecutionProvider\"]` and no provider options: the session falls back "
            "to GPU 0, whatever `device_id` was given (onnxruntime 1.31.1 onnxruntime_inference_collection.py:682-696, 397-402)"
        )
        fix = ctx.fix(self.code, "Pass `enable_fallback=0`: a failed provider then raises instead of moving to GPU 0", ctx.add_keyword(node, "enable_fallback=0"))
        ctx.report(self.code, node, message, fix)


def _provider_names(expr: ast.expr | None, ctx: FileContext) -> set[str]:
    """The provider names of a literal provider list (or a name assigned one)."""
    if isinstance(expr, ast.Name):
        found = ctx.scope.lookup_values(expr.id)
        expr = found[1][0] if found is not None and len(found[1]) == 1 else None
    if not isinstance(expr, (ast.List, ast.Tuple)):
        return set()
    names = set()
    for element in expr.elts:
        if isinstance(element, ast.Tuple) and element.elts:
            element = element.elts[0]
        if isinstance(element, ast.Constant) and isinstance(element.value, str):
            names.add(element.value)
    return names


CHECK = OnnxruntimeFallbackGpu0()
