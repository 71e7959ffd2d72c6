"""DL021: a `device_map` that spreads a model over every visible GPU or pins GPU 0."""

from __future__ import annotations

import ast

from devlint.static import entry_points, runtimes, values
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument, keyword, passes_unknown_args

# Planning strategies: accelerate measures every visible GPU and fills from GPU 0.
_SPREAD = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})
# Markers of a program started once per GPU (torchrun, accelerate launch, deepspeed): there
# transformers' `device_map="cuda"` is `cuda:$LOCAL_RANK`, the process's own GPU.
_PER_PROCESS = ("LOCAL_RANK", "local_rank", "init_process_group", "Accelerator(", "deepspeed")


class HfDeviceMap(Check):
    code = "DL021"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        entry = entry_points.matching(self.code, node, ctx)
        if entry is None or runtimes.devices_masked(ctx) or ctx.visible_devices_set_before(node):
            return
        if entry.option == "device_map":
            self._device_map(node, entry, ctx)
        elif entry.given(node) is None and not passes_unknown_args(node):
            message = (
                f"`{ctx.text(node.func)}(...)` without `max_memory` measures every visible GPU with a tensor on each "
                f"(a CUDA context on every GPU) and plans from GPU 0 ({entry.cite})"
            )
            fix = ctx.display_only(self.code, "pass `max_memory={index: ..., \"cpu\": ...}` with only the program's GPU")
            ctx.report(self.code, node, message, fix)
        self._max_memory(node, entry, ctx)

    def _device_map(self, node: ast.Call, entry, ctx: FileContext) -> None:
        given = entry.given(node)
        if given is None and entry.default in _SPREAD:
            self._spread_by_default(node, entry, ctx)
            return
        if given is None:
            self._quantized_without_map(node, ctx)
            return
        assigned = _assigned_several_times(given, ctx)
        if assigned:
            # `device_map = "auto"`, then `{"": LOCAL_RANK}` only under a launcher: each value
            # is judged where it is written, since each reaches the call on some run.
            for value in assigned:
                resolved, _ = _resolve(value, ctx)
                self._judge(node, entry, value, resolved, value, ctx)
            return
        value, decided_by = _resolve(given, ctx)
        self._judge(node, entry, given, value, decided_by, ctx)

    def _judge(self, node: ast.Call, entry, given: ast.expr, value: ast.expr, decided_by: ast.expr, ctx: FileContext) -> None:
        """Report `value`, which the call's `device_map` (written as `given`) may be, at `given`."""
        shown = ctx.text(decided_by)
        if _is_str(value) and value.value in _SPREAD:
            if keyword(node, "max_memory") is not None or passes_unknown_args(node):
                return
            message = (
                f"`device_map={shown}` without `max_memory` plans over every visible GPU: accelerate puts a tensor on each "
                f"to measure it (a CUDA context on every GPU) and fills GPU 0 first ({entry.cite})"
            )
            ctx.report(self.code, given, message, self._device_map_fix(node, ctx, given, "put the whole model on the program's GPU"))
            return
        if _is_str(value) and value.value == "cuda" and _transformers(node, ctx):
            if runtimes.mentions(ctx, *_PER_PROCESS):
                return
            message = (
                f"`device_map={shown}` loads onto `cuda:$LOCAL_RANK`, cuda:0 outside a launcher, not the current device "
                "(transformers 5.25.0 integrations/accelerate.py:117-121)"
            )
            ctx.report(self.code, given, message, self._device_map_fix(node, ctx, given, "load onto the program's GPU"))
            return
        pinned = _gpu0(value)
        if pinned is not None:
            message = f"`device_map={shown}` loads the model onto GPU 0, whatever device the program was told to use"
            ctx.report(self.code, given, message, self._device_map_fix(node, ctx, given, "load onto the program's GPU"))

    def _spread_by_default(self, node: ast.Call, entry, ctx: FileContext) -> None:
        """A loader whose own `device_map` default plans over every GPU (AutoAWQ's
        `from_quantized(device_map="balanced")`), called without one."""
        if keyword(node, "max_memory") is not None or passes_unknown_args(node):
            return
        message = (
            f"`{ctx.text(node.func)}(...)` leaves out `device_map`, which defaults to \"{entry.default}\": it plans over "
            f"every visible GPU, with a tensor on each to measure it, and fills GPU 0 first ({entry.cite})"
        )
        ctx.report(self.code, node, message, self._device_map_fix(node, ctx))

    def _quantized_without_map(self, node: ast.Call, ctx: FileContext) -> None:
        """`from_pretrained(..., load_in_4bit=True)` (or a `quantization_config`) without a
        device map: transformers' bitsandbytes quantizer loads onto the current device."""
        if passes_unknown_args(node) or not _transformers(node, ctx) or not _quantized(node) or ctx.device_selected_before(node):
            return
        message = (
            f"`{ctx.text(node.func)}(...)` quantized with bitsandbytes and no `device_map` loads onto "
            "`torch.cuda.current_device()`, GPU0 unless set_device chose another (transformers 5.25.0 "
            "quantizers/quantizer_bnb_4bit.py:97, quantizer_bnb_8bit.py:91)"
        )
        ctx.report(self.code, node, message, self._device_map_fix(node, ctx))

    def _device_map_fix(self, node: ast.Call, ctx: FileContext, given: ast.expr | None = None, why: str = ""):
        """Load onto the device in scope, `device_map={"": device}`: in place of the map the call
        gives (`given`, for `why`), or added to a call that gives none; else the manual step."""
        chosen = entry_points.chosen_device(ctx, given if given is not None else node)
        if chosen is None:
            step = entry_points.manual_step(ctx, '`device_map={"": ...}`')
            return ctx.display_only(self.code, f'pass `device_map={{"": device}}`: {step}')
        new = f'{{"": {chosen.expr}}}'
        if given is not None:
            return ctx.fix(self.code, f"Use `device_map={new}` ({why}: {chosen.why})", ctx.replace(given, new))
        return ctx.fix(self.code, f"Pass `device_map={new}` ({chosen.why})", ctx.add_keyword(node, f"device_map={new}"))

    def _max_memory(self, node: ast.Call, entry, ctx: FileContext) -> None:
        """GPU 0 among the budgets of a program that was told which GPU to use."""
        given = argument(node, "max_memory", entry.position if entry.option == "max_memory" else None)
        if given is None:
            return
        budgets, _ = _resolve(given, ctx)
        if not isinstance(budgets, ast.Dict):
            return
        zero = next((k for k in budgets.keys if isinstance(k, ast.Constant) and k.value == 0 and not isinstance(k.value, bool)), None)
        chosen = entry_points.chosen_device(ctx, node)
        if zero is None or chosen is None:
            return
        message = "`max_memory` gives GPU 0 a budget, so the planned device map puts layers on GPU 0, not only on the program's GPU"
        fix = ctx.display_only(self.code, f"budget only the program's GPU ({chosen.why}) and the CPU: `max_memory={{index: ..., \"cpu\": ...}}`")
        ctx.report(self.code, zero, message, fix)


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _resolve(expr: ast.expr, ctx: FileContext, depth: int = 0) -> tuple[ast.expr, ast.expr]:
    """The value a name stands for when it is assigned exactly once (and the expression
    that decides it, for the message)."""
    if isinstance(expr, ast.Name) and depth < 4:
        found = ctx.scope.lookup_values(expr.id)
        if found is not None and len(found[1]) == 1:
            value, _ = _resolve(found[1][0], ctx, depth + 1)
            return value, expr
    return expr, expr


def _assigned_several_times(expr: ast.expr, ctx: FileContext) -> list[ast.expr]:
    """The values of a name assigned more than once in its scope, else none."""
    if not isinstance(expr, ast.Name):
        return []
    found = ctx.scope.lookup_values(expr.id)
    return list(found[1]) if found is not None and len(found[1]) > 1 else []


def _quantized(node: ast.Call) -> bool:
    """May the call ask for bitsandbytes quantization (`load_in_4bit=True`, `load_in_8bit=True`
    or a flag the user sets, `load_in_8bit=args.load_8bit`; or any `quantization_config`)?"""
    for kw in node.keywords:
        if kw.arg in ("load_in_4bit", "load_in_8bit") and (
            (isinstance(kw.value, ast.Constant) and kw.value.value is True) or isinstance(kw.value, (ast.Name, ast.Attribute))
        ):
            return True
        if kw.arg == "quantization_config" and not (isinstance(kw.value, ast.Constant) and kw.value.value is None):
            return True
    return False


def _gpu0(value: ast.expr) -> ast.expr | None:
    """`0`, `"cuda:0"`, `{"": 0}`: the node that pins GPU 0."""
    if isinstance(value, ast.Constant) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return value if value.value == 0 else None
    if _is_str(value):
        v = values.of_text(value.value)
        return value if v.kind is values.Kind.GPU and v.index == 0 else None
    if isinstance(value, ast.Dict) and len(value.values) == 1:
        return _gpu0(value.values[0])
    return None


def _transformers(node: ast.Call, ctx: FileContext) -> bool:
    """Is the callee transformers' (where "cuda" means LOCAL_RANK, not the current device)?"""
    name = ctx.qualname(node.func) or ""
    if name.startswith(("transformers.", "peft.")):
        return True
    return name == "" and runtimes.mentions(ctx, "transformers") and not runtimes.mentions(ctx, "diffusers")


CHECK = HfDeviceMap()
