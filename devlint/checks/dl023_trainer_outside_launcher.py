"""DL023: transformers' Trainer set up outside a launcher in a program that chose a GPU."""

from __future__ import annotations

import ast
import re

from devlint.static import entry_points, runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import keyword

# Signs that the program is started once per GPU (torchrun, accelerate launch, deepspeed):
# TrainingArguments then takes the rank's GPU from the launcher.
_LAUNCHED = ("LOCAL_RANK", "local_rank", "init_process_group", "torchrun", "Accelerator(", "deepspeed")
# A program that tells a launched run from a plain one (`ddp = world_size != 1`, alpaca-lora's
# family): its single-process path, `python finetune.py`, is written to run too.
_EITHER_WAY = re.compile(r"\bworld_size\s*(?:!=|==|>|<=)\s*1\b", re.IGNORECASE)
# Keywords that keep the Trainer off the GPU.
_CPU_ONLY = ("use_cpu", "no_cuda")


class TrainerOutsideLauncher(Check):
    code = "DL023"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        entry = entry_points.matching(self.code, node, ctx)
        if entry is None or entry.option != "launcher":
            return
        if not entry.names[0].endswith("TrainingArguments") and runtimes.mentions(ctx, "TrainingArguments"):
            return  # reported at the TrainingArguments call, where the device is picked
        if any(keyword(node, flag) is not None for flag in _CPU_ONLY) or runtimes.devices_masked(ctx):
            return
        either_way = _EITHER_WAY.search(ctx.source.text)
        if runtimes.mentions(ctx, *_LAUNCHED) and not either_way:
            return
        chosen = entry_points.chosen_device(ctx, node)
        if chosen is None and not _selects_gpu(ctx) and not either_way:
            return
        undoes = "undoing the program's choice" if chosen is not None or _selects_gpu(ctx) else (
            f"when it runs as one process (`{either_way.group(0)}`)"
        )
        message = (
            f"`{ctx.text(node.func)}(...)` outside a launcher takes cuda:0 and calls `torch.cuda.set_device(cuda:0)`, "
            f"{undoes}; with several visible GPUs the Trainer wraps the model in DataParallel over "
            f"all of them ({entry.cite})"
        )
        which = f"the GPU in `{chosen.expr}`" if chosen is not None else "the chosen GPU"
        fix = ctx.display_only(
            self.code,
            f"the one manual step: start the program with only {which} visible, `CUDA_VISIBLE_DEVICES=1 python script.py` "
            "(or `os.environ[\"CUDA_VISIBLE_DEVICES\"] = ...` before torch is imported), or launch it with torchrun",
        )
        ctx.report(self.code, node, message, fix)


def _selects_gpu(ctx: FileContext) -> bool:
    """Does the module call `torch.cuda.set_device(i)` (i not a literal 0) anywhere?"""
    return ctx.memo("DL023 selects", lambda: any(
        ctx.module_scope.child(n).device_selected_at if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) else False
        for n in ctx.tree.body
    ) or bool(ctx.module_scope.device_selected_at))


CHECK = TrainerOutsideLauncher()
