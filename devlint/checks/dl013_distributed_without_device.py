"""DL013: NCCL set up without telling it the device, so it guesses GPU from the rank."""

from __future__ import annotations

import ast

from devlint import catalog
from devlint.static import distributed
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument, has_argument


class DistributedWithoutDevice(Check):
    code = "DL013"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        api = catalog.get(self.code).api
        if name in api.get("init", []):
            if ctx.index.process_group_selects_device():
                return  # set up after set_device: a barrier's guess is the selected GPU (see below)
            if self._may_use_nccl(node) and not has_argument(node, "device_id", None) and self._guessing_barriers(ctx):
                index = ctx.suggest_index(node)
                message = (
                    "`init_process_group` without `device_id`: NCCL learns the GPU only from later calls, "
                    "and `barrier()` then guesses it from the rank (GPU0 on rank 0)"
                )
                if index is None:
                    fix = ctx.display_only(self.code)
                else:
                    torch, imports = ctx.torch_module()
                    new = f'device_id={torch}.device("cuda", {index})'
                    fix = ctx.fix(self.code, f"Pass `{new}`", ctx.add_keyword(node, new), *imports)
                ctx.report(self.code, node, message, fix)
        elif name in api.get("barrier", []):
            if has_argument(node, "device_ids", None) or not self._file_may_guess(ctx):
                return
            if distributed.only_with_several_processes(ctx.path_to(node), ctx.scope):
                return  # one process per GPU: the guess (rank modulo GPU count) is the rank's GPU
            if ctx.index.process_group_selects_device():
                return  # every group is set up after set_device (the launcher's rank): the guess is that GPU
            index = ctx.suggest_index(node)
            message = "`barrier()` without `device_ids` on NCCL guesses the GPU from the rank (GPU0 on rank 0)"
            if index is None:
                fix = ctx.display_only(self.code)
            else:
                fix = ctx.fix(self.code, f"Pass `device_ids=[{index}]`", ctx.add_keyword(node, f"device_ids=[{index}]"))
            ctx.report(self.code, node, message, fix)

    def _may_use_nccl(self, node: ast.Call) -> bool:
        backend = argument(node, "backend", 0)
        if backend is None:
            return True  # the default initialises NCCL for CUDA tensors
        return isinstance(backend, ast.Constant) and isinstance(backend.value, str) and "nccl" in backend.value

    def _file_may_guess(self, ctx: FileContext) -> bool:
        """False when this file initialises the process group with `device_id` or a non-NCCL backend."""

        def compute() -> bool:
            inits = catalog.get(self.code).api.get("init", [])
            for node in ast.walk(ctx.tree):
                if isinstance(node, ast.Call) and ctx.qualname(node.func) in inits:
                    if has_argument(node, "device_id", None) or not self._may_use_nccl(node):
                        return False
            return True

        return ctx.memo("DL013 may guess", compute)

    def _guessing_barriers(self, ctx: FileContext) -> bool:
        """Does this file call `barrier()` without `device_ids`? Only then does the missing
        `device_id` make NCCL guess (measured on torch 2.11: init alone creates no context)."""

        def compute() -> bool:
            barriers = catalog.get(self.code).api.get("barrier", [])
            return any(
                isinstance(node, ast.Call)
                and ctx.qualname(node.func) in barriers
                and not has_argument(node, "device_ids", None)
                for node in ast.walk(ctx.tree)
            )

        return ctx.memo("DL013 barriers", compute)


CHECK = DistributedWithoutDevice()
