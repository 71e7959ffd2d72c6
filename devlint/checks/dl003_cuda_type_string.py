"""DL003: `.type()` with a CUDA type string: the string has no device index."""

from __future__ import annotations

import ast

from devlint.static.engine import Check
from devlint.static import placement
from devlint.static.context import FileContext
from devlint.static.names import argument


class CudaTypeString(Check):
    code = "DL003"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr != "type" or ctx.qualname(func):
            return
        target = argument(node, "dtype", 0)
        if target is None:
            return
        legacy = self._legacy_cuda_type(target, ctx)
        if legacy is not None:
            ctx.report(self.code, node, f"`.type({ctx.text(target)})` moves to the current CUDA device: the type names no device index", self._legacy_fix(node, legacy, ctx))
            return
        if placement.cpu_rooted(ctx, func.value) is None:
            return  # a tensor already on a GPU keeps its device under .type()
        reference = self._reference(target, ctx)
        if reference is not None:
            ref_text = ctx.text(reference)
            message = (
                f"`.type({ctx.text(target)})` builds this tensor on the current CUDA device when "
                f"`{ref_text}` is on a GPU: a type string names no device index"
            )
            fix = ctx.fix(self.code, f"Use `.type_as({ref_text})`: same dtype, and {ref_text}'s device", ctx.replace_method(node, f"type_as({ref_text})"))
            ctx.report(self.code, node, message, fix)
            return
        caller = self._caller_passing_type_string(target, ctx)
        if caller is not None:
            message = (
                f"`.type({ctx.text(target)})` builds this tensor on the current CUDA device: "
                f"`{target.id}` gets a CUDA type string from {caller}, which names no device index"
            )
            ctx.report(self.code, node, message, ctx.display_only(
                self.code,
                f"pass the reference tensor instead of its type string and use `.type_as(ref)` "
                f"(or `device=ref.device, dtype=ref.dtype`)",
            ))

    def _reference(self, target: ast.expr, ctx: FileContext) -> ast.expr | None:
        """The tensor whose `.type()` string is used, directly or through a local name."""
        ref = placement.type_string_of(target)
        if ref is not None:
            return ref
        if isinstance(target, ast.Name):
            found = ctx.scope.lookup_values(target.id)
            if found is not None and len(found[1]) == 1:
                ref = placement.type_string_of(found[1][0])
                if ref is not None and isinstance(ref, ast.Name):
                    return ref
        return None

    def _legacy_cuda_type(self, target: ast.expr, ctx: FileContext) -> str | None:
        """`"torch.cuda.FloatTensor"` or `torch.cuda.FloatTensor` -> "FloatTensor"."""
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            return placement.legacy_cuda_type(target.value)
        return placement.legacy_cuda_type(ctx.qualname(target))

    def _legacy_fix(self, node: ast.Call, type_name: str, ctx: FileContext):
        found = ctx.suggest_device(node)
        torch, imports = ctx.torch_module()
        dtype = placement.legacy_constructors()[type_name].replace("torch.", f"{torch}.", 1)
        if found is None:
            return ctx.display_only(self.code, f"use `.to(device=device, dtype={dtype})` with the target device")
        new = f"to(device={found.expr}, dtype={dtype})"
        return ctx.fix(self.code, f"Use `.{new}`", ctx.replace_method(node, new), *imports)

    def _caller_passing_type_string(self, target: ast.expr, ctx: FileContext) -> str | None:
        if not isinstance(target, ast.Name):
            return None
        function = ctx.scope.function
        if function is None or target.id not in function.params:
            return None
        if ctx.scope.lookup_values(target.id) is not None:
            return None  # reassigned locally
        qualname = ctx.index.qualname_of(function)
        return ctx.index.type_string_caller(qualname, target.id)


CHECK = CudaTypeString()
