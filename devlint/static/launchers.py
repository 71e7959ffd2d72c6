"""Code that runs under a launcher which makes each process's own GPU current.

Accelerate, Lightning and DeepSpeed call `torch.cuda.set_device` for each process they run
(accelerate 1.16.0 state.py:306, 780-806, after `init_process_group` under torchrun or
`accelerate launch`; lightning 2.6.6 fabric/strategies/strategy.py:113 through
fabric/accelerators/cuda.py:29-38; deepspeed 0.19.8 runtime/engine.py:1940-1950). A single
process `Accelerator()` calls none, but its device is `torch.device("cuda")`, the current
device (state.py:722-731): `.cuda()` lands where `accelerator.device` does either way. So
`.cuda()` and `"cuda"` written in code that runs under one of them follow the launcher's
choice and are no leak, like DETR-style helpers after `set_device` (static/distributed.py).

A script's own `torch.cuda.set_device(local_rank)` (RIFE's and DETR's train.py, after
`init_process_group`) or CUDA_VISIBLE_DEVICES assignment does the same for the code after it,
and its module-level choice for the functions the script then calls.

Under a launcher: code after `Accelerator(...)`, `deepspeed.initialize(...)`,
`deepspeed.init_distributed(...)` or `fabric.launch(...)` in the same function or in the
module's own code (which runs before its functions are called), the methods of a
`LightningModule` other than `__init__` (which runs before the trainer chose), a function of the module that is handed to
`fabric.launch(fn)`, and a function of the module whose every call in it is under a launcher
(a helper reached only from the training loop; calls from other modules are not seen, so a
helper no code of its module calls is still judged). What a scope calls is recorded with its
other device selections (static/scope.py), so the checks that ask `ctx.device_selected_before`
see it. The names are catalog data (DL001's `launchers`, `launched_bases`, `fabrics`).
"""

from __future__ import annotations

import ast
import functools

from devlint import catalog

@functools.cache
def selecting_calls() -> frozenset[str]:
    """Calls after which the current device is the process's own GPU (catalog: DL001's
    `launchers`, each with the library source it was read from)."""
    return frozenset(catalog.api("DL001", "launchers", []))


@functools.cache
def lightning_modules() -> frozenset[str]:
    """Classes whose methods (other than `__init__`) a trainer calls after it selected the
    process's device (catalog: DL001's `launched_bases`)."""
    return frozenset(catalog.api("DL001", "launched_bases", []))


@functools.cache
def _fabrics() -> frozenset[str]:
    return frozenset(catalog.api("DL001", "fabrics", []))


# Methods that start a launcher's processes with their devices set (`fabric.launch()`).
LAUNCH_METHODS = frozenset({"launch"})
# Words a module whose code chooses the process's device contains: the cheap test before any work.
WORDS = ("Accelerator", "PartialState", "deepspeed", "Fabric", "fabric", "Lightning", "set_device", "CUDA_VISIBLE_DEVICES")


def selects_device(call: ast.Call, resolve) -> bool:
    """Does `call` start a launcher (`Accelerator()`, `deepspeed.initialize(...)`,
    `fabric.launch()` on a name bound to `Fabric(...)`)? `resolve(expr)` gives a callee's
    qualified name."""
    name = resolve(call.func)
    if name in selecting_calls():
        return True
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr in LAUNCH_METHODS and _is_fabric(func.value, resolve)


def _is_fabric(expr: ast.expr, resolve) -> bool:
    if isinstance(expr, ast.Call):
        return resolve(expr.func) in _fabrics()
    return isinstance(expr, ast.Name) and "fabric" in expr.id.lower()


def lightning_module(cls: ast.ClassDef, resolve) -> bool:
    """Is `cls` a LightningModule (a direct subclass)?"""
    return any(resolve(base) in lightning_modules() for base in cls.bases)


def launched_functions(tree: ast.Module) -> set[str]:
    """Names of functions a module hands to `fabric.launch(fn)`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LAUNCH_METHODS:
            found.update(a.id for a in node.args[:1] if isinstance(a, ast.Name) and "fabric" in ast.unparse(node.func.value).lower())
    return found


def reached_only_under(module, started: set[str]) -> set[str]:
    """Names of the module's functions (and methods) whose every call in the module runs
    under a launcher: after a launcher start in the calling function, or inside a function in
    `started` (launched or LightningModule code) or already found. `module`: its Scope."""
    functions = {}  # name -> Scope, for top-level functions and methods
    for name, node in module.defs.items():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[name] = module.child(node)
        elif isinstance(node, ast.ClassDef):
            cls = module.child(node)
            for method in node.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.setdefault(method.name, cls.child(method))
    sites: dict[str, list[tuple[str | None, int]]] = {name: [] for name in functions}
    callers = [(None, module)] + list(functions.items())
    for caller, scope in callers:
        for node in _calls_of(scope.node):
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if callee in sites and callee != caller:
                sites[callee].append((caller, node.lineno))
    scopes = dict(functions)
    under = set(started)
    changed = True
    while changed:
        changed = False
        for name, calls in sites.items():
            if name in under or not calls:
                continue
            if all(caller in under or _after_start(scopes[caller] if caller else module, line) for caller, line in calls):
                under.add(name)
                changed = True
    return under - set(started)


def binds_device_before(scope, module, line: int) -> bool:
    """Is the code at `line` of `scope` run after the process's device was chosen, in that
    scope or in the module's own code (which runs before any of its functions is called)?"""
    return _after_start(scope, line) or (scope is not module and bool(module.device_selected_at))


def _after_start(scope, line: int) -> bool:
    """After a launcher start, a `torch.cuda.set_device(i)` or a CUDA_VISIBLE_DEVICES
    assignment in `scope`'s own code (static/scope.py records all three)."""
    return any(start < line for start in scope.device_selected_at)


def _calls_of(root: ast.AST):
    """Calls in a function's own body (nested functions and classes are their own callers)."""
    stack = list(root.body) if isinstance(root.body, list) else [root.body]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
