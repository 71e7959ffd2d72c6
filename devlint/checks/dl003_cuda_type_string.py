"""DL003: `.type()` with a CUDA type string: the string has no device index."""

from __future__ import annotations

import ast
import re

from devlint.findings import AddArgument, Applicability, Fix, Threading
from devlint.static import placement
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument, keyword


# Parameter names that say they hold a tensor type string (not `dtype`, a torch.dtype).
_TYPE_STRING_PARAM = re.compile(r"^(type|.*_type|type_str(ing)?|tensor_type)$")


class CudaTypeString(Check):
    code = "DL003"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr != "type" or ctx.qualname(func):
            self._passes_type_string(node, ctx)
            return
        target = argument(node, "dtype", 0)
        if target is None:
            return
        legacy = self._legacy_cuda_type(target, ctx)
        if legacy is not None:
            if ctx.device_selected_before(node):
                return  # the current device is the chosen one, as for `.cuda()` (DL001)
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
        if not self._is_parameter(target, ctx):
            return
        caller = ctx.index.type_string_caller(ctx.index.qualname_of(ctx.scope.function), target.id)
        if caller is not None:
            message = (
                f"`.type({target.id})` builds this tensor on the current CUDA device: "
                f"`{target.id}` gets a CUDA type string from {caller}, which names no device index"
            )
        elif _TYPE_STRING_PARAM.match(target.id):
            message = (
                f"`.type({target.id})` builds this tensor on the current CUDA device whenever a caller passes "
                f"a CUDA type string such as `x.type()`: it names no device index"
            )
        else:
            return
        ctx.report(self.code, node, message, self._thread_fix(func.value, target.id, ctx))

    def _thread_fix(self, tensor: ast.expr, param: str, ctx: FileContext):
        """Build the tensor on a `device` parameter; callers pass `x.device` beside `x.type()`."""
        without = "pass the reference tensor's device too and build on it: `torch.arange(n, device=ref.device)`"
        factory = placement.unplaced_factory(ctx, tensor)
        if factory is None:
            return ctx.display_only(self.code, without)
        return ctx.thread_device(self.code, ctx.use_device_at(factory, "device"), without, type_string=param)

    def _passes_type_string(self, node: ast.Call, ctx: FileContext) -> None:
        """A call that passes `x.type()` to a helper building its tensor with `.type(param)`."""
        if keyword(node, "device") is not None:
            return
        for sink in ctx.index.type_sinks(ctx.qualname(node.func)):
            given = argument(node, sink.param, sink.position)
            reference = placement.type_string_of(given) if given is not None else None
            if reference is None:
                continue
            ref = ctx.text(reference)
            message = (
                f"`{ctx.text(node.func)}(...)` is passed `{ref}.type()`, a CUDA type string with no device index: "
                f"it builds its tensor with `.type({sink.param})` on the current CUDA device ({sink.filename}:{sink.span[0]})"
            )
            without = f"pass `device={ref}.device` and build the helper's tensor on it"
            if sink.threadable is not None:
                fix = ctx.display_only(self.code, f"{without} ({sink.threadable})")
            else:
                site = (AddArgument(ctx.call_span(node), "device", f"{ref}.device"),)
                threading = Threading(sink.target(), sink.qualname, "device", "None", site, type_string=sink.param)
                fix = Fix(Applicability.UNSAFE, without, (), threading)
            ctx.report(self.code, node, message, fix)
            return

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

    def _is_parameter(self, target: ast.expr, ctx: FileContext) -> bool:
        """`target` is a parameter of the enclosing function, not reassigned there."""
        function = ctx.scope.function
        return (
            isinstance(target, ast.Name)
            and function is not None
            and target.id in function.params
            and ctx.scope.lookup_values(target.id) is None
        )


CHECK = CudaTypeString()
