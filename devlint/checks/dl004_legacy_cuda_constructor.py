"""DL004: `torch.cuda.FloatTensor(...)` and friends allocate on the current device."""

from __future__ import annotations

import ast

from devlint.static.engine import Callees, Check
from devlint.static import placement
from devlint.static.context import FileContext

class LegacyCudaConstructor(Check):
    code = "DL004"

    def callees(self) -> Callees:
        """`torch.cuda.<Type>` ends in the type's name; a plain name may be an alias or a
        local assigned one."""
        return Callees(frozenset(placement.legacy_constructors()), names=True)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        type_name = self._constructor(node.func, ctx)
        if type_name is None or ctx.device_selected_before(node):
            return
        message = (
            f"`{ctx.text(node.func)}(...)` is a legacy constructor that allocates on the current CUDA device "
            f"(GPU0 unless set_device chose another)"
        )
        if not isinstance(node.func, ast.Attribute):
            message += f" (`{ctx.text(node.func)}` is torch.cuda.{type_name})"
        ctx.report(self.code, node, message, self._fix(node, type_name, ctx))

    def _constructor(self, func: ast.expr, ctx: FileContext) -> str | None:
        name = ctx.qualname(func)
        if name is None and isinstance(func, ast.Name):
            # `Tensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor; Tensor(n)`
            found = ctx.scope.lookup_values(func.id)
            for value in found[1] if found is not None else ():
                for option in (value.body, value.orelse) if isinstance(value, ast.IfExp) else (value,):
                    type_name = placement.legacy_cuda_type(ctx.qualname(option))
                    if type_name is not None:
                        return type_name
            return None
        return placement.legacy_cuda_type(name)

    def _fix(self, node: ast.Call, type_name: str, ctx: FileContext):
        torch, imports = ctx.torch_module()
        dtype = placement.legacy_constructors()[type_name].replace("torch.", f"{torch}.", 1)
        found = ctx.suggest_device(node)
        if found is None or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return ctx.display_only(self.code, f"use `torch.empty(size, dtype={dtype}, device=device)` or `torch.tensor(data, dtype={dtype}, device=device)`")
        args = node.args
        tail = f"dtype={dtype}, device={found.expr}"
        if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple, ast.ListComp)):
            new = f"{torch}.tensor({ctx.text(args[0])}, {tail})"
        elif len(args) != 1 or _size_literal(args[0]):
            sizes = ", ".join(ctx.text(a) for a in args) or "0"
            new = f"{torch}.empty({sizes}, {tail})"
        else:  # one argument that may be a size or data (an array)
            return ctx.display_only(self.code, f"use `{torch}.empty(size, {tail})` for a size or `{torch}.tensor(data, {tail})` for data")
        return ctx.fix(self.code, f"Use `{new}`", ctx.replace(node, new), *imports)


def _size_literal(expr: ast.expr) -> bool:
    """An int, arithmetic on ints, or `len(...)`/`int(...)`: surely a size, not data."""
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, int) and not isinstance(expr.value, bool)
    if isinstance(expr, ast.BinOp):
        return _size_literal(expr.left) and _size_literal(expr.right)
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in ("len", "int")


CHECK = LegacyCudaConstructor()
