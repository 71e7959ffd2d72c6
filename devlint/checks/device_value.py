"""Shared logic of the rules about device values written in the source (DL002, DL008).

A device value is judged where it is used (`.to(x)`, `device=x`, `map_location=x`,
`torch.device(...)`) and where it is chosen (`device = ...`, `args.device = ...`,
`--device` defaults, `{"device": ...}`). A finding sits on the literal that
decides the device, so `device = "cuda" if ok else "cpu"` is reported once, on
its line, however many calls use `device` afterwards.
"""

from __future__ import annotations

import ast

from devlint.static.engine import Check
from devlint.findings import Fix
from devlint.static import options, placement
from devlint.static.context import FileContext
from devlint.static.devices import Kind, names_a_device
from devlint.static.names import encloses


class DeviceValueCheck(Check):
    kind: Kind

    def message(self, text: str) -> str:
        raise NotImplementedError

    # --- where devices are used ---------------------------------------------

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if self._reported_by_dl011(node, ctx):
            return
        for expr in placement.device_arguments(ctx, node):
            self.judge(expr, ctx, used=True)
        if ctx.qualname(node.func) == "torch.device" and not isinstance(ctx.parent, ast.withitem):
            self.judge(node, ctx, used=True)

    def visit_Dict(self, node: ast.Dict, ctx: FileContext) -> None:
        for value in placement.dict_device_values(node):
            self.judge(value, ctx, used=True)

    # --- where devices are chosen -------------------------------------------

    def visit_Assign(self, node: ast.Assign, ctx: FileContext) -> None:
        value = placement.selection_value(node)
        if value is not None:
            self.judge(value, ctx, used=False)

    visit_AnnAssign = visit_Assign

    def _reported_by_dl011(self, node: ast.Call, ctx: FileContext) -> bool:
        """`torch.zeros(3).to("cuda")`: DL011 reports the factory, with a better fix."""
        func = node.func
        return (
            self.kind is Kind.CURRENT
            and "DL011" in ctx.enabled
            and isinstance(func, ast.Attribute)
            and func.attr == "to"
            and placement.unplaced_factory(ctx, func.value) is not None
        )

    def visit_Return(self, node: ast.Return, ctx: FileContext) -> None:
        function = ctx.scope.node
        if node.value is not None and isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if names_a_device(function.name):
                self.judge(node.value, ctx, used=False)

    # --- judging --------------------------------------------------------------

    def judge(self, expr: ast.expr, ctx: FileContext, used: bool) -> None:
        device = ctx.device(expr, ints_are_devices=used)
        if device.kind is not self.kind or device.node is None:
            return
        if any(isinstance(a, ast.Compare) for a in ctx.ancestors):
            return
        literal = device.node
        direct = encloses(expr, literal)
        if not direct and self._chosen_on_a_selection_line(literal, ctx):
            return  # visit_Assign reports it where it is chosen
        if ctx.device_selected_before(expr) and self.kind is Kind.CURRENT:
            return
        text = ctx.text(literal)
        ctx.report(self.code, literal, self.message(text), self.fix(literal, expr, text, ctx, used and direct))

    def _chosen_on_a_selection_line(self, literal: ast.AST, ctx: FileContext) -> bool:
        values = ctx.memo("selection values", lambda: [
            value
            for node in ast.walk(ctx.tree)
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            and (value := placement.selection_value(node)) is not None
        ])
        return any(encloses(value, literal) for value in values)

    def fix(self, literal: ast.AST, expr: ast.expr, text: str, ctx: FileContext, used_here: bool) -> Fix:
        if used_here:
            found = ctx.suggest_device(literal)
            if found is not None:
                return ctx.fix(self.code, f"Use `{found.expr}` instead of `{text}`", ctx.replace(literal, found.expr))
        source = options.source_of_device(literal, ctx)
        if source is not None:
            return self._from_source(literal, source, ctx)
        if not used_here and self.kind is Kind.CURRENT:
            return ctx.display_only(self.code, options.manual_step(literal, ctx))
        return ctx.display_only(
            self.code,
            'give it the index the program was given (a --gpu flag, LOCAL_RANK): `torch.device("cuda", index)`; '
            "or launch with CUDA_VISIBLE_DEVICES",
        )

    def _from_source(self, literal: ast.AST, source: options.Source, ctx: FileContext) -> Fix:
        """Build the device from what the user gave the program; comparisons of the chosen
        value with `"cuda"` are rewritten so that they stay true for `"cuda:N"`."""
        if source.is_device:
            new = source.expr
        elif isinstance(literal, ast.Call):  # torch.device("cuda") stays a call of the same name
            new = f'{ctx.text(literal.func)}("cuda", {source.expr})'
        else:
            new = f'f"cuda:{{{source.expr}}}"'
        edits = [ctx.replace(literal, new)]
        if not source.is_device:
            edits.extend(options.comparisons_kept_true(literal, ctx))
        return ctx.fix(self.code, f"Use `{new}`: {source.why}", *edits)
