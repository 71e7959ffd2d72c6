"""DL009: `CUDA_VISIBLE_DEVICES` set after CUDA may already be initialised."""

from __future__ import annotations

import ast

from devlint import catalog
from devlint.static.engine import Check
from devlint.static.context import FileContext
from devlint.static.scope import _shallow

_VAR = "CUDA_VISIBLE_DEVICES"


def _is_environ(expr: ast.expr, ctx: FileContext) -> bool:
    return ctx.qualname(expr) == "os.environ"


def _names_var(expr: ast.expr | None) -> bool:
    return isinstance(expr, ast.Constant) and expr.value == _VAR


class LateCudaVisibleDevices(Check):
    code = "DL009"

    def visit_Assign(self, node: ast.Assign, ctx: FileContext) -> None:
        for target in node.targets:
            if isinstance(target, ast.Subscript) and _names_var(target.slice) and _is_environ(target.value, ctx):
                self._judge(node, ctx)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        name = ctx.qualname(func)
        if name == "os.putenv" and node.args and _names_var(node.args[0]):
            self._judge(node, ctx)
        elif isinstance(func, ast.Attribute) and _is_environ(func.value, ctx):
            if func.attr == "setdefault" and node.args and _names_var(node.args[0]):
                self._judge(node, ctx)
            elif func.attr == "update" and (
                any(kw.arg == _VAR for kw in node.keywords)
                or any(isinstance(a, ast.Dict) and any(_names_var(k) for k in a.keys) for a in node.args)
            ):
                self._judge(node, ctx)

    def _judge(self, node: ast.AST, ctx: FileContext) -> None:
        earlier = self._cuda_initialised_before(node, ctx)
        if earlier is None:
            return
        message = (
            f"`{_VAR}` is set after CUDA may be initialised ({earlier}): a process reads it once, "
            "at CUDA initialisation, so the program keeps every GPU visible and uses GPU0"
        )
        ctx.report(self.code, node, message)

    def _cuda_initialised_before(self, node: ast.AST, ctx: FileContext) -> str | None:
        """Describe a call that initialises CUDA and runs before `node`, if there is one:
        earlier in the same function or module code, or in module code when `node` is in a function."""
        initialisers = catalog.api(self.code, "initialisers", [])
        scope = ctx.scope.function or ctx.module_scope
        candidates = [(scope, node.lineno)]
        if scope is not ctx.module_scope:
            candidates.append((ctx.module_scope, None))  # module code runs before any function
        for owner, before in candidates:
            for child in _shallow(owner.body):
                if isinstance(child, ast.Call) and (before is None or child.lineno < before):
                    saved, ctx.scope = ctx.scope, owner
                    try:
                        name = ctx.qualname(child.func)
                    finally:
                        ctx.scope = saved
                    attr = child.func.attr if isinstance(child.func, ast.Attribute) else None
                    if name in initialisers or (name is None and attr == "cuda"):
                        return f"`{ctx.text(child.func)}()` at line {child.lineno}"
        return None


CHECK = LateCudaVisibleDevices()
