"""DL020: a process group set up by code that never selects the rank's GPU."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.findings import Edit
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument


class ProcessGroupWithoutSetDevice(Check):
    code = "DL020"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if ctx.qualname(node.func) not in _inits() or not _may_use_cuda(node, ctx):
            return
        scope = ctx.scope.function or ctx.module_scope
        if scope.device_selected_at or ctx.device_selected_before(node):
            return  # set_device (or CUDA_VISIBLE_DEVICES) in the same code, before or after
        if scope is ctx.module_scope and ctx.memo("DL020 functions select", lambda: _functions_select(ctx)):
            return  # a group set up on import, the GPU selected by the script's main() that runs next
        message = (
            "`init_process_group` in code that never calls `torch.cuda.set_device`: every rank's current device "
            "stays GPU0, so each rank's current-device work (`'cuda'` tensors, object collectives, `barrier()`, "
            "`destroy_process_group()`) lands on GPU0"
        )
        ctx.report(self.code, node, message, self._fix(node, ctx))

    def _fix(self, node: ast.Call, ctx: FileContext):
        index = ctx.suggest_index(node) or _local_rank_name(ctx)
        statement = next((a for a in reversed(ctx.ancestors) if isinstance(a, ast.stmt)), None)
        if index is None or statement is None:
            return ctx.display_only(self.code)
        torch, imports = ctx.torch_module()
        start = ctx.start(statement)
        indent = ctx.source.line(statement.lineno)[: start.column - 1]
        line = f"{torch}.cuda.set_device({index})"
        edit = Edit(f"{line}{ctx.source.newline}{indent}", start, start)
        return ctx.fix(self.code, f"Call `{line}` before `init_process_group`", edit, *imports)


def _may_use_cuda(node: ast.Call, ctx: FileContext) -> bool:
    """An NCCL group: asked for, the default for CUDA tensors, or a backend chosen at run time."""
    backend = argument(node, "backend", 0)
    if isinstance(backend, ast.Constant) and isinstance(backend.value, str):
        return "nccl" in backend.value
    return True


def _functions_select(ctx: FileContext) -> bool:
    """Does a function of the module (or a method of its classes) select the device?"""
    module = ctx.module_scope
    for node in module.defs.values():
        scope = module.child(node)
        inner = [scope.child(n) for n in scope.defs.values()] if scope.kind == "class" else [scope]
        if any(s.device_selected_at for s in inner):
            return True
    return False


def _local_rank_name(ctx: FileContext) -> str | None:
    """A name this module or function assigns from the `LOCAL_RANK` variable torchrun sets."""
    for scope in filter(None, (ctx.scope.function, ctx.module_scope)):
        for name, values in scope.assigns.items():
            if any(isinstance(n, ast.Constant) and n.value == "LOCAL_RANK" for v in values for n in ast.walk(v)):
                return name
    return None


@functools.cache
def _inits() -> frozenset[str]:
    return frozenset(catalog.api("DL013", "init", []))


CHECK = ProcessGroupWithoutSetDevice()
