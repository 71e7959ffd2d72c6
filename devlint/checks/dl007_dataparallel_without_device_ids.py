"""DL007: `nn.DataParallel(model)` without `device_ids` uses every GPU and gathers on GPU0;
a Lightning launcher with a device count or "auto", and `mp.spawn(..., nprocs=device_count())`,
span the GPUs from GPU0."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.static.engine import Check
from devlint.findings import Applicability
from devlint.static import walk
from devlint.static.context import FileContext
from devlint.static.names import argument, has_argument, keyword


class DataParallelWithoutDeviceIds(Check):
    code = "DL007"

    def wanted(self, ctx: FileContext) -> bool:
        """Files that name a wrapper, or a project class inheriting one (`SyncBN(model)`)."""
        if super().wanted(ctx):
            return True
        text = ctx.source.text
        return any(name in text for name in ctx.index.subclass_names(wrappers() | spanning_launchers()))

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        if self._spans_every_gpu(node, name, ctx) or self._spawns_per_gpu(node, name, ctx):
            return
        if name not in wrappers():
            name = next((base for base in ctx.index.ancestors(name) if base in wrappers()), None) and name
            if name is None:
                return  # neither a wrapper nor a project class that inherits one
        if has_argument(node, "device_ids", 1) or ctx.visible_devices_set_before(node):
            return  # after CUDA_VISIBLE_DEVICES, "every visible GPU" is the chosen ones
        if self._never_run(ctx):
            return
        short = name.rsplit(".", 1)[-1]
        message = (
            f"`{short}(...)` without `device_ids` replicates onto every visible GPU and gathers "
            "outputs on GPU0 (`device_ids[0]`)"
        )
        index = ctx.suggest_index(node)
        if index is None:
            fix = ctx.display_only(self.code)
        else:
            fix = ctx.fix(
                self.code,
                f"Pass `device_ids=[{index}], output_device={index}`",
                ctx.add_keyword(node, f"device_ids=[{index}], output_device={index}"),
                applicability=Applicability.UNSAFE,
            )
        ctx.report(self.code, node, message, fix)


    def _spans_every_gpu(self, node: ast.Call, name: str | None, ctx: FileContext) -> bool:
        """A Lightning launcher (or a project subclass) given a literal device count or "auto"
        on an accelerator that may be a GPU: reported here (True when it was a launcher)."""
        launchers = spanning_launchers()
        if name not in launchers and not any(base in launchers for base in ctx.index.ancestors(name)):
            return False
        devices = keyword(node, "devices")
        accelerator = keyword(node, "accelerator")
        if devices is None or not _counts_from_gpu0(devices.value) or ctx.visible_devices_set_before(node):
            return True
        if accelerator is not None and not (
            isinstance(accelerator.value, ast.Constant) and accelerator.value.value in ("gpu", "cuda", "auto")
        ):
            return True
        count = devices.value.value
        if count in ("auto", -1, "-1"):
            which = "every visible GPU"
        else:
            which = "the first visible GPU" if count == 1 else f"the first {count} visible GPUs"
        written = f"{ctx.text(node.func)}(devices={ctx.text(devices.value)})"
        self._starts_processes(node, written, which, "pass the GPUs the program was given (`devices=[index]`)", ctx)
        return True

    def _spawns_per_gpu(self, node: ast.Call, name: str | None, ctx: FileContext) -> bool:
        """`mp.spawn(run, nprocs=torch.cuda.device_count())`: one process per visible GPU,
        rank r on cuda:r, so rank 0 is GPU0. Reported here (True when it was a spawner)."""
        if name not in process_spawners():
            return False
        nprocs = argument(node, "nprocs", 2)
        if nprocs is None or not _every_visible_gpu(nprocs, ctx) or ctx.visible_devices_set_before(node):
            return True
        written = f"{ctx.text(node.func)}(..., nprocs={ctx.text(nprocs)})"
        advice = "spawn one process per GPU the program was given (and bind each with set_device)"
        self._starts_processes(node, written, "every visible GPU", advice, ctx)
        return True

    def _starts_processes(self, node: ast.Call, written: str, which: str, advice: str, ctx: FileContext) -> None:
        """Report a launcher that starts a process per GPU counted from GPU0."""
        message = f"`{written}` starts a process on {which}, from GPU0: no option chooses the GPU"
        ctx.report(self.code, node, message, ctx.display_only(self.code, f"{advice}, or launch with CUDA_VISIBLE_DEVICES set"))

    def _never_run(self, ctx: FileContext) -> bool:
        """`tmp = nn.DataParallel(net)` whose every use is `tmp.load_state_dict(...)`,
        `tmp.state_dict()` or `tmp.module`: a wrapper made only to read or write a checkpoint
        saved with the `module.` prefix. It never runs forward, so it replicates and gathers
        nothing, and with several GPUs visible its constructor moves nothing either (torch
        2.13 nn/parallel/data_parallel.py:169: only a single device id moves the module)."""
        assign, function = ctx.parent, ctx.scope.function
        if function is None or not isinstance(assign, ast.Assign) or len(assign.targets) != 1:
            return False
        target = assign.targets[0]
        if not isinstance(target, ast.Name):
            return False
        parents = ctx.memo(f"parents {id(function.node)}", lambda: walk.parents(function.node))
        for read in walk.nodes(function.node):
            if isinstance(read, ast.Name) and read.id == target.id and isinstance(read.ctx, ast.Load):
                used = parents.get(id(read))
                if not (isinstance(used, ast.Attribute) and used.attr in _UNWRAPPING):
                    return False
        return True


_UNWRAPPING = frozenset({"load_state_dict", "state_dict", "module"})


def _every_visible_gpu(value: ast.expr, ctx: FileContext, depth: int = 0) -> bool:
    """`torch.cuda.device_count()`, or a name or attribute assigned it, directly or through
    names (`n_gpus = torch.cuda.device_count(); world_size = n_gpus`; UniAnimate's
    `cfg.gpus_per_machine = torch.cuda.device_count()`)."""
    if depth > 3:
        return False
    if isinstance(value, ast.Name):
        assigned = ctx.assigned(value)
    elif isinstance(value, ast.Attribute):
        written = ctx.text(value)
        function = ctx.scope.function
        assigned = [
            node.value for node in walk.nodes(function.node if function is not None else ctx.tree)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and ctx.text(t) == written for t in node.targets)
        ]
    else:
        return _counts_gpus(value, ctx)
    return any(_every_visible_gpu(v, ctx, depth + 1) for v in assigned)


def _counts_gpus(value: ast.expr, ctx: FileContext) -> bool:
    return isinstance(value, ast.Call) and ctx.qualname(value.func) == "torch.cuda.device_count"


def _counts_from_gpu0(value: ast.expr) -> bool:
    """`"auto"`, `-1` or a positive integer literal: Lightning's devices counted from GPU0."""
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub) and isinstance(value.operand, ast.Constant):
        return value.operand.value == 1
    if not isinstance(value, ast.Constant) or isinstance(value.value, bool):
        return False
    return value.value in ("auto", "-1") or (isinstance(value.value, int) and value.value >= 1)


@functools.cache
def spanning_launchers() -> frozenset[str]:
    return frozenset(catalog.api("DL007", "spanning_launchers", []))


@functools.cache
def process_spawners() -> frozenset[str]:
    return frozenset(catalog.api("DL007", "process_spawners", []))


@functools.cache
def wrappers() -> frozenset[str]:
    return frozenset(catalog.api("DL007", "wrappers", []))


CHECK = DataParallelWithoutDeviceIds()
