"""DL027: an op of a C++/CUDA extension whose C++ opens no device guard, called outside one."""

from __future__ import annotations

import ast
from pathlib import Path

from devlint import catalog
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.index import EXTENSION_GUARD, read_source
from devlint.static.names import argument

_SOURCE_SUFFIXES = (".cpp", ".cc", ".cxx", ".cu", ".cuh", ".h", ".hpp")


class ExtensionOpWithoutDeviceGuard(Check):
    code = "DL027"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "cpp_extension") or bool(ctx.index.extension_names())

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return
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
        """The sources of the unguarded extension `module` names: one this file builds with
        `load`/`load_inline`, or one a setup script of the project builds (imported here)."""
        built = ctx.memo("DL027 unguarded extensions", lambda: _unguarded_extensions(ctx))
        if module.id in built and ctx.scope.lookup_values(module.id) is not None:
            return built[module.id]
        if module.id not in ctx.scope.imports and ctx.scope.resolve(module.id) is None:
            return None
        return ctx.index.unguarded_extension(ctx.qualname(module))


def _unguarded_extensions(ctx: FileContext) -> dict[str, str]:
    """Names bound to `cpp_extension.load(...)`/`load_inline(...)` whose sources (read as
    text) take no device guard, and the sources read."""
    builders = catalog.api("DL027", "builders", {})
    found: dict[str, str] = {}
    for node in ast.walk(ctx.tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        call = node.value
        if not isinstance(call, ast.Call):
            continue
        builder = builders.get(ctx.qualname(call.func) or "")
        if builder is None:
            continue
        texts = _source_texts(call, builder, ctx)
        if texts and not any(EXTENSION_GUARD.search(text) for _, text in texts):
            found[node.targets[0].id] = ", ".join(name for name, _ in texts)
    return found


def _source_texts(call: ast.Call, builder: dict, ctx: FileContext) -> list[tuple[str, str]]:
    """(name, text) of each C++/CUDA source the call builds; [] when one cannot be read."""
    texts = []
    for param, position in builder.get("files", {}).items():
        for name in _listed_strings(argument(call, param, position), ctx):
            path = str(Path(ctx.index.path_of(ctx.filename)).resolve().parent / name)
            ctx.index.depends_on_file(path)
            text = read_source(path) if name.endswith(_SOURCE_SUFFIXES) else None
            if text is None:
                return []
            texts.append((name, text))
    for param, position in builder.get("inline", {}).items():
        for text in _listed_strings(argument(call, param, position), ctx):
            texts.append((f"`{param}`", text))
    return texts


def _listed_strings(expr: ast.expr | None, ctx: FileContext) -> list[str]:
    """The strings of a source list: literals, `os.path.join(dir, "x.cu")` (its last
    literal part), names assigned one of these."""
    if expr is None:
        return []
    if isinstance(expr, ast.Name):
        found = ctx.scope.lookup_values(expr.id) or ctx.module_scope.lookup_values(expr.id)
        return _listed_strings(found[1][0], ctx) if found is not None and len(found[1]) == 1 else []
    if isinstance(expr, (ast.List, ast.Tuple)):
        return [s for e in expr.elts for s in _listed_strings(e, ctx)]
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, ast.Call) and expr.args and isinstance(expr.args[-1], ast.Constant) and isinstance(expr.args[-1].value, str):
        return [expr.args[-1].value]  # os.path.join(module_path, "upfirdn2d_kernel.cu")
    return []


CHECK = ExtensionOpWithoutDeviceGuard()
