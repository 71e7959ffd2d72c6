"""DL027: an op of a C++/CUDA extension whose C++ opens no device guard, called outside one."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check


class ExtensionOpWithoutDeviceGuard(Check):
    code = "DL027"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "cpp_extension") or bool(ctx.index.extension_names())

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return
        if func.attr.lower().startswith(_releasing()):
            return  # tears down what an earlier op made: it launches and allocates nothing
        sources = self._unguarded(func.value, ctx)
        if sources is None:
            return
        if runtimes.current_device_set(ctx, node) or runtimes.devices_masked(ctx):
            return
        message = (
            f"`{ctx.text(func)}` is an op of extension `{func.value.id}`, whose C++ opens no device guard "
            f"({sources}): it launches on the current device (GPU 0 unless set_device chose another), "
            "not its tensors', so with tensors on cuda:1 it reads them from GPU 0 or fails"
        )
        ctx.report(self.code, node, message, runtimes.guard_fix(self.code, node, ctx))

    def _unguarded(self, module: ast.Name, ctx: FileContext) -> str | None:
        """The sources of the unguarded extension `module` names (the project index holds
        them): a name this file binds to `load(...)`/`load_inline(...)`, one imported from the
        module that binds it (`from .backend import _backend`), or a module a setup script
        builds (`from pkg import _C`)."""
        if ctx.scope.lookup_values(module.id) is not None:
            name = f"{ctx.module_name}.{module.id}" if ctx.module_name else module.id
            return ctx.index.unguarded_extension(name)
        if module.id not in ctx.scope.imports and ctx.scope.resolve(module.id) is None:
            return None
        return ctx.index.unguarded_extension(ctx.qualname(module))


@functools.cache
def _releasing() -> tuple[str, ...]:
    """Prefixes of op names that release what an earlier op made (catalog: `releasing`)."""
    return tuple(catalog.api("DL027", "releasing", []))


CHECK = ExtensionOpWithoutDeviceGuard()
