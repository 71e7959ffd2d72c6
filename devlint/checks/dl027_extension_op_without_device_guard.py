"""DL027: an op of a C++/CUDA extension whose C++ opens no device guard, called outside one."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.findings import Applicability
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check


class ExtensionOpWithoutDeviceGuard(Check):
    code = "DL027"

    def wanted(self, ctx: FileContext) -> bool:
        libraries = sorted({entry["library"] for entry in (*_native_modules().values(), *_library_ops().values())})
        return runtimes.mentions(ctx, "cpp_extension", *libraries) or bool(ctx.index.extension_names())

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        name = ctx.qualname(func) or ""
        library = _native_modules().get(name)
        if library is not None:
            self._native_module(node, library, ctx)
            return
        op = _library_ops().get(name) or self._library_op_module(func, ctx)
        if op is not None:
            self._library_op(node, op, ctx)
            return
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return
        if func.attr.lower().startswith(_releasing()):
            return  # tears down what an earlier op made: it launches and allocates nothing
        sources = self._unguarded(func.value, ctx)
        if sources is not None:
            self._report_unguarded(
                node, f"`{ctx.text(func)}` is an op of extension `{func.value.id}`, whose C++ opens no device guard ({sources})", ctx,
            )

    def _report_unguarded(self, node: ast.Call, what: str, ctx: FileContext) -> None:
        """An unguarded kernel launched here, unless the current device was chosen: `what`
        says whose kernel it is and where its C++ was read."""
        if runtimes.current_device_set(ctx, node) or runtimes.devices_masked(ctx):
            return
        message = (
            f"{what}: it launches on the current device (GPU 0 unless set_device chose another), "
            "not its tensors', so with tensors on cuda:1 it reads them from GPU 0 or fails"
        )
        ctx.report(self.code, node, message, runtimes.guard_fix(self.code, node, ctx))

    def _native_module(self, node: ast.Call, library: dict, ctx: FileContext) -> None:
        """A library module whose compiled extension builds its state and parameters on the
        current device when it is constructed, with no device parameter."""
        if runtimes.current_device_set(ctx, node) or runtimes.devices_masked(ctx):
            return
        message = (
            f"`{ctx.text(node.func)}(...)` builds its native module and parameters on the current device "
            f"(GPU 0 unless set_device chose another): {library['library']}'s compiled extension takes no device "
            f"({library['versions']}); moving the model afterwards leaves the GPU 0 context behind"
        )
        found = ctx.suggest_device(node)
        statement = runtimes.statement_of(ctx)
        edit = None
        if found is not None and isinstance(statement, (ast.Expr, ast.Assign)) and statement.value is node:
            torch, imports = ctx.torch_module()
            header = f"{torch}.cuda.device({found.expr})"
            edit = runtimes.wrap_in_with(ctx, statement, header)
        if edit is None:
            fix = ctx.display_only(self.code, "construct it under `with torch.cuda.device(device):`, the device the model is for")
        else:
            fix = ctx.fix(self.code, f"Construct it under `with {header}:`", edit, *imports, applicability=Applicability.UNSAFE)
        ctx.report(self.code, node, message, fix)

    def _library_op_module(self, func: ast.expr, ctx: FileContext) -> dict | None:
        """`self.act(x)` where the class made `self.act` a library module whose forward is
        an unguarded op (`self.act = FusedLeakyReLU(channels)`)."""
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"):
            return None
        if not runtimes.mentions(ctx, *_library_op_module_names()):
            return None  # no such module is built in this file
        function = ctx.scope.function
        cls = function.enclosing_class if function is not None else None
        for _, value in cls.self_attrs.get(func.attr, []) if cls is not None else ():
            if isinstance(value, ast.Call):
                entry = _library_op_modules().get(ctx.qualname(value.func) or "")
                if entry is not None:
                    return entry
        return None

    def _library_op(self, node: ast.Call, op: dict, ctx: FileContext) -> None:
        """A library function or module whose compiled kernel launches with no device guard.
        A project that builds the extension itself (a vendored copy) is judged where the op
        launches, not here."""
        if not set(op["extensions"]) & ctx.index.extension_names():
            self._report_unguarded(
                node,
                f"`{ctx.text(node.func)}(...)` runs a {op['library']} kernel whose C++ opens no device guard "
                f"({op['versions']}: {op['source']})",
                ctx,
            )

    def _unguarded(self, module: ast.Name, ctx: FileContext) -> str | None:
        """The sources of the unguarded extension `module` names (the project index holds
        them): a name this file binds to `load(...)`/`load_inline(...)`, one imported from the
        module that binds it (`from .backend import _backend`), or a module a setup script
        builds (`from pkg import _C`)."""
        if ctx.scope.lookup_values(module.id) is not None:
            return ctx.index.unguarded_extension(ctx.global_name(module.id))
        if module.id not in ctx.scope.imports and ctx.scope.resolve(module.id) is None:
            return None
        return ctx.index.unguarded_extension(ctx.qualname(module))


@functools.cache
def _releasing() -> tuple[str, ...]:
    """Prefixes of op names that release what an earlier op made (catalog: `releasing`)."""
    return tuple(catalog.api("DL027", "releasing", []))


@functools.cache
def _native_modules() -> dict[str, dict]:
    """Library classes built on the current device by their compiled extension, by qualified
    name (catalog: `native_modules`)."""
    return {name: entry for entry in catalog.api("DL027", "native_modules", []) for name in entry["names"]}



@functools.cache
def _library_ops() -> dict[str, dict]:
    """Library functions that launch an unguarded kernel, by qualified name (catalog: `library_ops`)."""
    return {name: entry for entry in catalog.api("DL027", "library_ops", []) for name in entry["functions"]}


@functools.cache
def _library_op_modules() -> dict[str, dict]:
    """Library torch modules whose forward is such an op, by qualified name."""
    return {name: entry for entry in catalog.api("DL027", "library_ops", []) for name in entry["modules"]}


@functools.cache
def _library_op_module_names() -> tuple[str, ...]:
    return tuple(sorted({name.rsplit(".", 1)[-1] for name in _library_op_modules()}))


CHECK = ExtensionOpWithoutDeviceGuard()
