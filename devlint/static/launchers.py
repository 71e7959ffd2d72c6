"""Code that runs under a launcher which makes each process's own GPU current.

Accelerate, Lightning and DeepSpeed call `torch.cuda.set_device` for each process they run
(accelerate 1.16.0 state.py:306, 780-806, after `init_process_group` under torchrun or
`accelerate launch`; lightning 2.6.6 fabric/strategies/strategy.py:113 through
fabric/accelerators/cuda.py:29-38; deepspeed 0.19.8 runtime/engine.py:1940-1950). A single
process `Accelerator()` calls none, but its device is `torch.device("cuda")`, the current
device (state.py:722-731): `.cuda()` lands where `accelerator.device` does either way. So
`.cuda()` and `"cuda"` written in code that runs under one of them follow the launcher's
choice and are no leak, like DETR-style helpers after `set_device` (static/distributed.py).

Under a launcher: code after `Accelerator(...)`, `deepspeed.initialize(...)`,
`deepspeed.init_distributed(...)` or `fabric.launch(...)` in the same function (or module),
the methods of a `LightningModule`, and a function of the module that is handed to
`fabric.launch(fn)`. What a scope calls is recorded with its other device selections
(static/scope.py), so the checks that ask `ctx.device_selected_before` see it.
"""

from __future__ import annotations

import ast

# Calls after which the current device is the process's own GPU.
SELECTING_CALLS = frozenset(
    {
        "accelerate.Accelerator",
        "accelerate.PartialState",
        "accelerate.accelerator.Accelerator",
        "deepspeed.initialize",
        "deepspeed.init_distributed",
    }
)
# Methods that start a launcher's processes with their devices set (`fabric.launch()`).
LAUNCH_METHODS = frozenset({"launch"})
# Classes whose methods a Lightning Trainer calls after it selected the process's device.
LIGHTNING_MODULES = frozenset(
    {
        "lightning.LightningModule",
        "lightning.pytorch.LightningModule",
        "pytorch_lightning.LightningModule",
        "lightning.pytorch.core.LightningModule",
        "pytorch_lightning.core.LightningModule",
    }
)
_FABRIC = ("lightning.Fabric", "lightning.fabric.Fabric", "lightning_fabric.Fabric")


def selects_device(call: ast.Call, resolve) -> bool:
    """Does `call` start a launcher (`Accelerator()`, `deepspeed.initialize(...)`,
    `fabric.launch()` on a name bound to `Fabric(...)`)? `resolve(expr)` gives a callee's
    qualified name."""
    name = resolve(call.func)
    if name in SELECTING_CALLS:
        return True
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr in LAUNCH_METHODS and _is_fabric(func.value, resolve)


def _is_fabric(expr: ast.expr, resolve) -> bool:
    if isinstance(expr, ast.Call):
        return resolve(expr.func) in _FABRIC
    return isinstance(expr, ast.Name) and "fabric" in expr.id.lower()


def lightning_module(cls: ast.ClassDef, resolve) -> bool:
    """Is `cls` a LightningModule (a direct subclass)?"""
    return any(resolve(base) in LIGHTNING_MODULES for base in cls.bases)


def launched_functions(tree: ast.Module) -> set[str]:
    """Names of functions a module hands to `fabric.launch(fn)` / `something.launch(fn)`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LAUNCH_METHODS:
            found.update(a.id for a in node.args[:1] if isinstance(a, ast.Name) and "fabric" in ast.unparse(node.func.value).lower())
    return found
