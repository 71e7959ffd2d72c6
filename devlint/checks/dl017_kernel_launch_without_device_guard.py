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
        tensor = next((a.id for a in node.args if isinstance(a, ast.Name) and _is_tensor(a.id, ctx)), None)
        if tensor is None:
            return ctx.display_only(self.code)
        torch, imports = ctx.torch_module()
        header = f"{torch}.cuda.device({tensor}.device)"
        statement = runtimes.statement_of(ctx)
        edit = None
        if isinstance(statement, (ast.Expr, ast.Assign)) and statement.value is node:
            edit = runtimes.wrap_in_with(ctx, statement, header)
        if edit is None:
            return ctx.display_only(self.code, f"launch it under `with {header}:`")
        return ctx.fix(self.code, f"Launch it under `with {header}:` (the device of its argument `{tensor}`)", edit, *imports)


# Attributes only a tensor has among a kernel's arguments (scalars and constexprs have none).
_TENSOR_ATTRIBUTES = frozenset({"device", "stride", "shape", "dtype", "numel", "data_ptr", "is_cuda", "size", "contiguous", "element_size"})
_TENSOR_METHODS = frozenset({"to", "contiguous", "cuda", "clone", "view", "reshape", "float", "half", "flatten", "permute", "transpose", "type_as"})


def _is_tensor(name: str, ctx: FileContext) -> bool:
    """Does the code show `name` to be a tensor: a tensor attribute read in this function,
    or a value from torch (`torch.empty_like(x)`, `x.to(...)`)? The fix names its device."""
    function = ctx.scope.function
    if function is None:
        return False
    if any(owner == name and attr in _TENSOR_ATTRIBUTES for owner, attr in function.attribute_uses):
        return True
    for value in function.assigns.get(name, []):
        if isinstance(value, ast.Call):
            callee = ctx.qualname(value.func) or ""
            method = value.func.attr if isinstance(value.func, ast.Attribute) else ""
            if callee.startswith("torch.") or method in _TENSOR_METHODS:
                return True
    return False


CHECK = KernelLaunchWithoutDeviceGuard()
