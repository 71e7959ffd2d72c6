"""Shared logic of the rules on library calls whose device option defaults to GPU 0 (DL022,
DL024, DL025): the option left out, or given a value the library reads as "not given".

A rule names its entry points in its catalog file (static/entry_points.py reads them) and
says here how the program's device is written into the option. These libraries pick
`cuda:0` themselves, not the current device, so `set_device` does not excuse a call; only a
CUDA_VISIBLE_DEVICES narrowed to the chosen GPU does.
"""

from __future__ import annotations

import ast

from devlint.static import entry_points, runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.entry_points import Chosen, EntryPoint
from devlint.static.names import keyword, passes_unknown_args


class OmittedOptionCheck(Check):
    unless: tuple[str, ...] = ()  # other keywords that settle the device (pipeline's device_map)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        entry = entry_points.matching(self.code, node, ctx)
        if entry is None or runtimes.devices_masked(ctx) or ctx.visible_devices_set_before(node):
            return
        if any(keyword(node, other) is not None for other in self.unless) or self.excused(node, ctx):
            return
        given = entry.given(node)
        if given is None:
            if passes_unknown_args(node):
                return
            message = f"`{_callee(node, ctx)}(...)` without `{entry.option}=` puts its work on {entry.omitted}; {entry.cite}"
            ctx.report(self.code, node, message, self._add_fix(node, entry, ctx))
        elif self.means_omitted(given):
            message = f"`{ctx.text(given)}` counts as not given: `{_callee(node, ctx)}(...)` puts its work on {entry.omitted}; {entry.cite}"
            ctx.report(self.code, given, message, self._replace_fix(node, given, entry, ctx))

    def excused(self, node: ast.Call, ctx: FileContext) -> bool:
        return False

    def means_omitted(self, given: ast.expr) -> bool:
        """A value the library treats as left out (diffusers' falsy `gpu_id=0`)."""
        return False

    def written(self, chosen: Chosen, entry: EntryPoint, ctx: FileContext) -> tuple[str, tuple]:
        """`option=value` for the program's device, and an edit it needs (an import)."""
        return f"{entry.option}={chosen.expr}", ()

    def _add_fix(self, node: ast.Call, entry: EntryPoint, ctx: FileContext):
        chosen = entry_points.chosen_device(ctx, node)
        if chosen is None:
            return ctx.display_only(self.code, f"pass `{entry.option}=`: {entry_points.manual_step(ctx, f'`{entry.option}=`')}")
        text, edits = self.written(chosen, entry, ctx)
        return ctx.fix(self.code, f"Pass `{text}` ({chosen.why})", ctx.add_keyword(node, text), *edits)

    def _replace_fix(self, node: ast.Call, given: ast.expr, entry: EntryPoint, ctx: FileContext):
        chosen = entry_points.chosen_device(ctx, given)
        passed = next((kw for kw in node.keywords if kw.value is given), None)
        if chosen is None or passed is None:
            return ctx.display_only(self.code, f"pass the GPU to use: {entry_points.manual_step(ctx, f'`{entry.option}=`')}")
        text, edits = self.written(chosen, entry, ctx)
        return ctx.fix(self.code, f"Pass `{text}` instead ({chosen.why})", ctx.replace(passed, text), *edits)

def _callee(node: ast.Call, ctx: FileContext) -> str:
    text = ctx.text(node.func)
    return text if len(text) <= 50 else "..." + text[-47:]
