"""DL019: another GPU runtime told GPU 0: an id written as 0, or left at its default 0."""

from __future__ import annotations

import ast
import functools
import re

from devlint import catalog
from devlint.findings import Fix
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument, passes_unknown_args


@functools.lru_cache(maxsize=1)
def _entries() -> tuple[dict[str, dict], dict[str, dict]]:
    """API entries by qualified name and by method name."""
    by_name, by_method = {}, {}
    for entry in catalog.api("DL019", "calls", []):
        if "name" in entry:
            by_name[entry["name"]] = entry
        else:
            by_method[entry["method"]] = entry
    return by_name, by_method


@functools.lru_cache(maxsize=1)
def _packages() -> tuple[str, ...]:
    """The packages one of which a file must name to tell a runtime in the table anything."""
    return tuple(sorted({e.get("package") or e["name"].split(".")[0] for e in catalog.api("DL019", "calls", [])}))


def _is_zero(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value == 0


class RuntimeGpu0(Check):
    code = "DL019"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "ExecutionProvider", *_packages())

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        by_name, by_method = _entries()
        func = node.func
        entry = None
        if isinstance(func, ast.Attribute) and func.attr in by_method:
            entry = by_method[func.attr]
            if not runtimes.mentions(ctx, entry["package"]):
                return
        if entry is None:
            name = ctx.qualname(func)
            entry = by_name.get(name) if name else None
        if entry is None or (entry.get("unless") and runtimes.mentions(ctx, entry["unless"])):
            return
        given = argument(node, entry.get("keyword", ""), entry.get("position"))
        shown = ctx.text(func)
        if given is None:
            if not entry.get("defaults_to_zero") or passes_unknown_args(node) or runtimes.devices_masked(ctx):
                return
            message = f"`{shown}(...)` without `{entry['keyword']}` runs {entry['library']} on GPU 0 (it defaults to 0), whatever device the program was told to use"
            fix = ctx.display_only(self.code, entry["advice"]) if "advice" in entry else self._added(node, entry["keyword"], ctx)
            ctx.report(self.code, node, message, fix)
        elif _is_zero(given) or (isinstance(given, ast.Constant) and isinstance(given.value, str) and _names_gpu0(given.value, entry)):
            if runtimes.devices_masked(ctx):
                return
            message = f"`{ctx.text(given)}` pins {entry['library']} to GPU 0, whatever device the program was told to use"
            ctx.report(self.code, given, message, self._replaced(given, entry, ctx))

    def visit_Dict(self, node: ast.Dict, ctx: FileContext) -> None:
        """ONNX Runtime provider options `{"device_id": 0}`."""
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value == "device_id" and _is_zero(value):
                if not runtimes.mentions(ctx, "ExecutionProvider") or runtimes.devices_masked(ctx):
                    return
                message = f"`{ctx.text(key)}: 0` pins ONNX Runtime to GPU 0, whatever device the program was told to use"
                ctx.report(self.code, value, message, self._replaced(value, {"strings": ""}, ctx))

    def visit_Subscript(self, node: ast.Subscript, ctx: FileContext) -> None:
        """numba's `cuda.gpus[0]`."""
        if _is_zero(node.slice) and runtimes.mentions(ctx, "numba") and ctx.qualname(node.value) in catalog.api(self.code, "device_lists", []):
            if runtimes.devices_masked(ctx):
                return
            message = f"`{ctx.text(node)}` pins numba.cuda to GPU 0, whatever device the program was told to use"
            ctx.report(self.code, node.slice, message, self._replaced(node.slice, {"strings": ""}, ctx))

    def _replaced(self, literal: ast.Constant, entry: dict, ctx: FileContext) -> Fix:
        index = runtimes.gpu_index(ctx, literal)
        if index is None:
            return ctx.display_only(self.code, "use the GPU index the program was given (a --gpu option, LOCAL_RANK) instead of 0")
        if isinstance(literal.value, str):
            if not index.simple:
                return ctx.display_only(self.code, f"name the GPU by {index.why}: `{index.expr}`")
            prefix = literal.value[: literal.value.rindex("0")]
            new = f'f"{prefix}{{{index.expr}}}"'
        else:
            new = index.expr
        return ctx.fix(self.code, f"Use `{new}`: {index.why}", ctx.replace(literal, new), *index.edits)

    def _added(self, node: ast.Call, keyword: str, ctx: FileContext) -> Fix:
        index = runtimes.gpu_index(ctx, node)
        if index is None:
            return ctx.display_only(self.code, f"pass `{keyword}=` with the GPU index the program was given")
        return ctx.fix(self.code, f"Pass `{keyword}={index.expr}`: {index.why}", ctx.add_keyword(node, f"{keyword}={index.expr}"), *index.edits)


def _names_gpu0(text: str, entry: dict) -> bool:
    pattern = entry.get("strings")
    return bool(pattern) and re.fullmatch(pattern, text) is not None


CHECK = RuntimeGpu0()
