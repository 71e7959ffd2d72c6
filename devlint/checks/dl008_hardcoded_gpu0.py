"""DL008: GPU0 written out (`"cuda:0"`, `torch.device("cuda", 0)`, `.cuda(0)`, `.to(0)`)."""

from __future__ import annotations

import ast

from devlint.checks.device_value import DeviceValueCheck
from devlint.static.context import FileContext
from devlint.static.devices import Kind


class HardcodedGpu0(DeviceValueCheck):
    code = "DL008"
    kind = Kind.GPU0

    def message(self, text: str) -> str:
        return f"`{text}` pins GPU0, whatever device the program was told to use"

    def visit_With(self, node: ast.With, ctx: FileContext) -> None:
        for item in node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and ctx.qualname(expr.func) == "torch.cuda.device" and expr.args:
                self.judge(expr.args[0], ctx, used=True)


CHECK = HardcodedGpu0()
