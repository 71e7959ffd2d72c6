"""DL018: CuPy, numba.cuda, dlib or pycuda work on the library's own current GPU, GPU 0."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.static import names, runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check


@functools.lru_cache(maxsize=1)
def _libraries() -> tuple[dict, ...]:
    return tuple(catalog.api("DL018", "libraries", []))


def _library_of(name: str | None) -> dict | None:
    if not name:
        return None
    for entry in _libraries():
        if name in entry.get("calls", ()) or any(name.startswith(p) for p in entry.get("prefixes", ())):
            return entry
    return None


class RuntimeCurrentDevice(Check):
    code = "DL018"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "pycuda", *(e["package"] for e in _libraries())) or runtimes.mentions_kernel(ctx)

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if isinstance(node.func, ast.Subscript):
            kernel = runtimes.launched_kernel(node, ctx)
            entry = next((e for e in _libraries() if kernel and e.get("kernels") == kernel[1]), None)
            shown = f"{entry['library']} kernel `{kernel[0]}` launches" if entry else ""
        else:
            entry = _library_of(ctx.qualname(node.func))
            shown = f"`{ctx.text(node.func)}(...)` runs" if entry else ""
        if entry is None:
            return
        if runtimes.current_device_set(ctx, node) or runtimes.selected_by(ctx, node, entry["selectors"]):
            return
        if runtimes.devices_masked(ctx) or not runtimes.first_in_scope(ctx, f"{self.code} {entry['library']}"):
            return
        message = (
            f"{shown} on {entry['library']}'s current CUDA device (GPU0 unless selected), "
            "whatever device the program was told to use"
        )
        ctx.report(self.code, node, message, self._fix(node, entry, ctx))

    def visit_Import(self, node: ast.Import, ctx: FileContext) -> None:
        if any(alias.name in catalog.api(self.code, "context_imports", []) for alias in node.names):
            self._report_import(node, ctx)

    def visit_ImportFrom(self, node: ast.ImportFrom, ctx: FileContext) -> None:
        if any(f"{node.module}.{alias.name}" in catalog.api(self.code, "context_imports", []) for alias in node.names):
            self._report_import(node, ctx)

    def _report_import(self, node: ast.AST, ctx: FileContext) -> None:
        if runtimes.devices_masked(ctx):
            return
        message = "`pycuda.autoinit` creates its CUDA context on GPU 0 (or $CUDA_DEVICE), whatever device the program was told to use"
        index = runtimes.gpu_index(ctx, node)
        i = index.expr if index is not None and index.simple else "index"
        advice = (
            f"make the context on the chosen GPU instead: `pycuda.driver.init()`, then "
            f"`context = pycuda.driver.Device({i}).retain_primary_context()` and `context.push()` "
            "(or set CUDA_DEVICE before the import)"
        )
        ctx.report(self.code, node, message, ctx.display_only(self.code, advice))

    def _fix(self, node: ast.Call, entry: dict, ctx: FileContext):
        template = entry["select"]
        line = _with_local_names(template, node, ctx)
        index = runtimes.gpu_index(ctx, node)
        statement = runtimes.statement_of(ctx)
        if index is None or line is None or statement is None:
            return ctx.display_only(self.code, f"select the GPU first: `{template.format(index='index')}`")
        edit = runtimes.insert_before(ctx, statement, line.format(index=index.expr))
        if edit is None:
            return ctx.display_only(self.code, f"select the GPU first: `{line.format(index=index.expr)}`")
        return ctx.fix(self.code, f"Select the GPU first: `{line.format(index=index.expr)}` ({index.why})", edit, *index.edits)


def _with_local_names(template: str, node: ast.Call, ctx: FileContext) -> str | None:
    """`cupy.cuda.Device(...)` written with this file's names (`cp.cuda.Device(...)`), or
    None when no name in scope reaches the library."""
    candidates = []
    parts = names.dotted(node.func)
    if parts:
        candidates.append(parts[0])
    candidates.extend(ctx.module_scope.imports)
    for local in candidates:
        target = ctx.scope.resolve(local)
        if target and (template.startswith(target + ".")):
            return local + template[len(target) :]
    return None


CHECK = RuntimeCurrentDevice()
