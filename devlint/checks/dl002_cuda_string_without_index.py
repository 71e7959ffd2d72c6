"""DL002: `"cuda"` / `torch.device("cuda")` used as a device: the current device."""

from __future__ import annotations

import ast

from devlint.checks.device_value import DeviceValueCheck
from devlint.static import placement, runtimes, split_index
from devlint.static.context import FileContext
from devlint.static.values import Value


class CudaStringWithoutIndex(DeviceValueCheck):
    code = "DL002"
    current = True

    def matches(self, value: Value) -> bool:
        return value.current

    def message(self, text: str, literal, ctx) -> str:
        return (
            f"`{text}` has no device index: it means the current device "
            "(GPU0 unless set_device or CUDA_VISIBLE_DEVICES chose another)"
        )

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        super().visit_Call(node, ctx)
        self._index_dropped(node, ctx)
        self._type_only(node, ctx)

    def _type_only(self, node: ast.Call, ctx: FileContext) -> None:
        """`y.to(x.device.type)`: the device *type* of a tensor on cuda:1 is "cuda", which
        names no index, so `y` goes to the current device instead of `x`'s GPU (GaLore's
        projector)."""
        for expr in placement.device_arguments(ctx, node):
            tensor = _device_type_of(expr)
            if tensor is None or ctx.device_selected_before(node):
                continue
            text = ctx.text(tensor)
            message = (
                f"`{ctx.text(expr)}` is only the device type (\"cuda\" for every GPU): it means the current "
                f"device (GPU0 unless set_device or CUDA_VISIBLE_DEVICES chose another), not `{text}`'s GPU"
            )
            ctx.report(self.code, expr, message, ctx.fix(self.code, f"Use `{text}.device`", ctx.replace(expr, f"{text}.device")))

    def _index_dropped(self, node: ast.Call, ctx: FileContext) -> None:
        """A device type whose GPU index the scope passes apart (`load_model(device=device,
        device_index=device_index)`), handed to a call without it: index-less there
        (split_index.py)."""
        if not runtimes.mentions(ctx, *_INDEX_KEYWORDS_PASSED):
            return
        if split_index.passes_an_index(node):
            return
        scope = ctx.scope.function or ctx.module_scope
        apart = ctx.memo(f"indexed apart {id(scope)}", lambda: split_index.indexed_apart(scope))
        if not apart:
            return
        used = [*placement.device_arguments(ctx, node), *(arg for arg, _ in placement.passed_as_device(ctx, node, every=True))]
        for expr in used:
            if isinstance(expr, ast.Name) and expr.id in apart and not ctx.device_selected_before(node):
                index = apart[expr.id]
                ctx.report(
                    self.code, expr,
                    f"`{expr.id}` is only the device type: its GPU index `{index}` is passed apart, not to "
                    f"`{ctx.text(node.func)}(...)`, where it means the current device (GPU0 unless set_device "
                    "or CUDA_VISIBLE_DEVICES chose another)",
                    ctx.display_only(self.code, f"give it the index too: `torch.device({expr.id}, {index})`"),
                )


def _device_type_of(expr: ast.expr) -> ast.expr | None:
    """The tensor of `tensor.device.type`, else None."""
    if isinstance(expr, ast.Attribute) and expr.attr == "type" and isinstance(expr.value, ast.Attribute) and expr.value.attr == "device":
        return expr.value.value
    return None


# What a call passing an index apart says (`device_index=`): a file without it has no such call.
_INDEX_KEYWORDS_PASSED = tuple(f"{k}=" for k in sorted(split_index.INDEX_KEYWORDS))

CHECK = CudaStringWithoutIndex()
