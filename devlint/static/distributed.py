"""Code that only runs in a distributed job, under an initialised process group.

DETR- and detectron-style `misc.py` helpers (`all_gather`, `reduce_dict`,
`SmoothedValue.synchronize_between_processes`) build tensors on `'cuda'`, but only after
`if not is_dist_avail_and_initialized(): return` or `if get_world_size() == 1: return`.
When the project's own distributed set-up calls `torch.cuda.set_device(local_rank)` before
`init_process_group` (a project-wide fact the index holds), the current device in that code
is the rank's own GPU, and `'cuda'` there is no leak. A library set-up that does both
(dora's `distrib.init`, catalog DL013 `setups`) counts as the project's own.

A `barrier()` without `device_ids` makes NCCL guess the rank's GPU as global rank modulo the
node's GPU count. In code that runs only when the job has several processes (a world-size
test, not merely an initialised group, which may hold a single rank on GPU 1), one process
per visible GPU, that guess is the rank's own GPU.
"""

from __future__ import annotations

import ast

from devlint.static import guards
from devlint.static.names import qualname
from devlint.static.scope import Scope


def _callee(expr: ast.expr) -> str:
    func = expr.func if isinstance(expr, ast.Call) else None
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _world_size(expr: ast.expr, scope: Scope) -> bool:
    """`get_world_size()`, `dist.get_world_size()`, a launcher library's `world_size()`, a
    local assigned one of them, or a value named for it (`world_size`, `args.world_size`,
    `distrib.world_size`: a module global its set-up assigns; `num_gpus`, one process each)."""
    if isinstance(expr, ast.Call):
        return _callee(expr).endswith("world_size")
    name = expr.id if isinstance(expr, ast.Name) else expr.attr if isinstance(expr, ast.Attribute) else ""
    if name.lower().endswith("world_size") or name.lower() in _PROCESS_COUNTS:
        return True
    if isinstance(expr, ast.Name):
        found = scope.lookup_values(expr.id)
        return found is not None and bool(found[1]) and all(_world_size(v, scope) for v in found[1])
    return False


# GPU and process counts that launchers spawn one process per unit of (`mp.spawn(fn,
# nprocs=num_gpus)`): in code that calls a barrier, the job's world size.
_PROCESS_COUNTS = frozenset({"num_gpus", "n_gpus", "ngpus", "num_gpu", "gpu_num", "nprocs", "num_processes"})


def _int(expr: ast.expr) -> int | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, int) and not isinstance(expr.value, bool):
        return expr.value
    return None


def _compares_world(test: ast.expr, scope: Scope) -> tuple[type, int] | None:
    """(operator, n) for `world_size OP n`."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and _world_size(test.left, scope):
        n = _int(test.comparators[0])
        if n is not None:
            return type(test.ops[0]), n
    return None


def _several(test: ast.expr, scope: Scope) -> bool:
    """`world_size > 1`, `>= 2`, `!= 1` (alone or in an `and`): several processes."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_several(value, scope) for value in test.values)
    compared = _compares_world(test, scope)
    if compared is None:
        return False
    op, n = compared
    return (op is ast.Gt and n >= 1) or (op is ast.GtE and n >= 2) or (op is ast.NotEq and n == 1)


def _single(test: ast.expr, scope: Scope) -> bool:
    """`world_size == 1`, `< 2`, `<= 1` (alone or in an `or`): one process."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return any(_single(value, scope) for value in test.values)
    compared = _compares_world(test, scope)
    if compared is None:
        return False
    op, n = compared
    return (op is ast.Eq and n == 1) or (op is ast.LtE and n == 1) or (op is ast.Lt and n == 2)


def only_with_several_processes(path: list[ast.AST], scope: Scope) -> bool:
    """Does the code at the end of `path` run only when the job has several processes (a
    world-size test; an initialised group alone may hold a single rank)?"""
    return guards.only_when(path, lambda test: _several(test, scope), lambda test: _single(test, scope))


def initialised(test: ast.expr, scope: Scope) -> bool:
    """Is `test` true only under an initialised process group: `dist.is_initialized()`,
    `is_dist_avail_and_initialized()`, `get_world_size() > 1`?"""
    if isinstance(test, ast.Call):
        name = _callee(test)
        return name == "is_initialized" or ("dist" in name and name.endswith("initialized"))
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return not_initialised(test.operand, scope)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(initialised(value, scope) for value in test.values)
    return _several(test, scope)


def not_initialised(test: ast.expr, scope: Scope) -> bool:
    """Is `test` true whenever no process group is initialised: `not dist.is_initialized()`,
    `get_world_size() == 1`, `world_size < 2`?"""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return initialised(test.operand, scope)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return any(not_initialised(value, scope) for value in test.values)
    return _single(test, scope)


def only_under_process_group(path: list[ast.AST], scope: Scope) -> bool:
    """Does the code at the end of `path` (from its function's body down) run only when a
    process group is initialised: behind a test that says so, or in a function whose own body
    makes a collective call at its top level (mmcv's `collect_results_gpu`: `dist.all_gather`
    raises without a group, so the function is only ever run under one)?"""
    if guards.only_when(path, lambda test: initialised(test, scope), lambda test: not_initialised(test, scope)):
        return True
    function = scope.function
    return function is not None and any(_collective(statement, function) for statement in function.body)


# torch.distributed calls that need an initialised process group.
_COLLECTIVES = frozenset({
    "all_gather", "all_gather_object", "all_reduce", "all_to_all", "barrier", "broadcast",
    "broadcast_object_list", "gather", "gather_object", "reduce", "reduce_scatter", "scatter",
})


def _collective(statement: ast.stmt, scope: Scope) -> bool:
    """Is the statement a collective call (`dist.all_gather(...)`), or an assignment of one?"""
    value = statement.value if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
    if not isinstance(value, ast.Call) or _callee(value) not in _COLLECTIVES:
        return False
    name = qualname(value.func, scope) or ""
    return name.startswith("torch.distributed.")
