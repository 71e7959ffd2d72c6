"""DL011: a tensor built on the CPU and then sent to the current device: build it in place."""

from __future__ import annotations

import ast
from collections import deque

from devlint.static.engine import Callees, Check
from devlint.findings import Applicability
from devlint.static import suggest
from devlint.static.context import FileContext
from devlint.static.placement import moves_to_current_device, unplaced_factory
from devlint.static.walk import children


class UnplacedFactory(Check):
    code = "DL011"

    def callees(self) -> Callees:
        return Callees(frozenset({"cuda", "to"}), names=False)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr not in ("cuda", "to") or ctx.qualname(func):
            return
        factory = unplaced_factory(ctx, func.value)
        if factory is None or not moves_to_current_device(ctx, node):
            return
        if ctx.device_selected_before(node):
            return
        name = ctx.text(factory.func)
        message = (
            f"`{name}(...)` is built on the CPU, then `.{func.attr}({ctx.text_args(node)})` copies it to the "
            "current CUDA device (GPU0 unless set_device chose another)"
        )
        ctx.report(self.code, factory, message, self._fix(node, factory, ctx))

    def _fix(self, move: ast.Call, factory: ast.Call, ctx: FileContext):
        found = ctx.suggest_device(move) or _tensor_in_arguments(factory, ctx)
        if found is None:
            without = f"pass `device=` to `{ctx.text(factory.func)}` with the target device"
            if move.func.attr == "cuda" and not move.args and not move.keywords:
                return ctx.thread_device(self.code, lambda: ctx.use_device_at(move, None), without)
            return ctx.display_only(self.code, without)
        others = [kw for kw in move.keywords if kw.arg != "device"]
        if others or len(move.args) > (1 if move.func.attr == "to" else 0):
            return ctx.display_only(self.code, f"pass `device={found.expr}` to `{ctx.text(factory.func)}`")
        edits = (ctx.add_keyword(factory, f"device={found.expr}"), ctx.drop_method(move))
        grade = None if found.local else Applicability.UNSAFE
        return ctx.fix(self.code, f"Build it on `{found.expr}`: `device={found.expr}`", *edits, applicability=grade)


def _below(root: ast.AST):
    """The nodes under `root`, breadth first as ast.walk gives them (the first match wins),
    through walk.children: ast.walk was a tenth of a check with a finding on every line."""
    queue = deque(children(root))
    while queue:
        node = queue.popleft()
        queue.extend(children(node))
        yield node


def _tensor_in_arguments(factory: ast.Call, ctx: FileContext) -> suggest.Suggestion | None:
    """`torch.ones(len(feats), 1)`, `torch.zeros(x.shape)`, `torch.zeros(x.size(0))`: a factory
    sized after a tensor belongs on that tensor's device."""
    written = ctx.text(factory)
    if "shape" not in written and "size" not in written and "len" not in written:
        return None  # none of the names looked for below is written in it
    for node in _below(factory):
        sized = None
        if isinstance(node, ast.Attribute) and node.attr == "shape":
            sized = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size":
            sized = node.func.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1:
            sized = node.args[0]
        if isinstance(sized, ast.Name) and ctx.scope.lookup_values(sized.id) is not None:
            return suggest.Suggestion(f"{sized.id}.device", False)  # a local computed from tensors
    return None


CHECK = UnplacedFactory()
