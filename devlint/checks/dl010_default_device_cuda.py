"""DL010: a default device of `"cuda"` sends every later factory call to the current device."""

from __future__ import annotations

import ast

from devlint.static.engine import Callees, Check
from devlint.static import placement
from devlint.static.context import FileContext
from devlint.static.names import encloses


class DefaultDeviceCuda(Check):
    code = "DL010"

    def callees(self) -> Callees:
        return Callees(frozenset({"set_default_device", "set_default_tensor_type"}), names=True)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        if name == "torch.set_default_device" and node.args:
            self._judge(node, node.args[0], ctx, "every factory call without `device=` then uses it")
        elif name == "torch.set_default_tensor_type" and node.args:
            target = node.args[0]
            text = target.value if isinstance(target, ast.Constant) else ctx.qualname(target)
            if isinstance(text, str) and placement.legacy_cuda_type(text):
                message = f"`torch.set_default_tensor_type({ctx.text(target)})` makes every new tensor a CUDA tensor on the current device (GPU0 unless set_device chose another)"
                ctx.report(self.code, node, message)

    def visit_With(self, node: ast.With, ctx: FileContext) -> None:
        for item in node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and ctx.qualname(expr.func) == "torch.device":
                self._judge(expr, expr, ctx, "factories inside the block use it, and `.cuda()` ignores it")

    def _judge(self, node: ast.expr, value: ast.expr, ctx: FileContext, consequence: str) -> None:
        device = ctx.device(value)
        if not device.current or device.node is None or not encloses(value, device.node):
            return  # a device chosen elsewhere is judged on its own line (DL002)
        message = f"`{ctx.text(value)}` as the default device means the current device (GPU0 unless set_device chose another): {consequence}"
        found = ctx.suggest_device(node)
        index = ctx.suggest_index(node)
        torch, imports = ctx.torch_module()
        if found is not None:
            new = f"{torch}.device({found.expr})" if value is node else found.expr
        elif index is not None:
            new = f'{torch}.device("cuda", {index})'
        else:
            new = None
        fix = ctx.fix(self.code, f"Use `{new}`", ctx.replace(value, new), *imports) if new else ctx.display_only(self.code)
        ctx.report(self.code, node, message, fix)


CHECK = DefaultDeviceCuda()
