"""Under which condition a piece of code runs, as far as the branches around it say.

A device written in a branch that only runs when the caller passed no device
(`if device is None: device = "cuda"`) is the callee's fallback: the leak is each
call that omits the device, and DL012 reports those. This module answers such
questions from the chain of nodes that leads from a function's body to the code.
"""

from __future__ import annotations

import ast
import bisect
import weakref

from devlint.static.parts import ChunkModule
from devlint.static.walk import children


def path_to(root: ast.AST, target: ast.AST) -> list[ast.AST]:
    """The nodes from `root` down to `target` (both included); empty if `target` is not below."""
    stack: list[tuple[ast.AST, int]] = [(root, 0)]
    path: list[ast.AST] = []
    while stack:
        node, depth = stack.pop()
        del path[depth:]
        path.append(node)
        if node is target:
            return path
        stack.extend((child, depth + 1) for child in reversed(children(node)))
    return []


def _names(test: ast.expr, param: str) -> bool:
    return isinstance(test, ast.Name) and test.id == param


def _against(test: ast.expr, param: str, unset) -> ast.cmpop | None:
    """The operator of `param OP unset` (`device is None`, `device == "auto"`); None for any other test."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and _names(test.left, param):
        right = test.comparators[0]
        if isinstance(right, ast.Constant) and right.value == unset and type(right.value) is type(unset):
            return test.ops[0]
    return None


def says_unset(test: ast.expr, param: str, unset=None) -> bool:
    """Is `test` true only when `param` holds `unset`, the value that means the caller chose
    nothing: `p is None`, `not p`, `p is None and ...`; with a sentinel default such as
    "auto", `p == "auto"`."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return (not unset and _names(test.operand, param)) or says_set(test.operand, param, unset)
    if isinstance(_against(test, param, unset), (ast.Is, ast.Eq)):
        return True
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(says_unset(value, param, unset) for value in test.values)
    return False


def says_set(test: ast.expr, param: str, unset=None) -> bool:
    """Is `test` true only when `param` was given: `p is not None`, `p`, `p is not None and ...`
    (with a sentinel, `p != "auto"`)."""
    if not unset and _names(test, param):
        return True
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return says_unset(test.operand, param, unset)
    if isinstance(_against(test, param, unset), (ast.IsNot, ast.NotEq)):
        return True
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(says_set(value, param, unset) for value in test.values)
    return False


def _ends(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], (ast.Return, ast.Raise, ast.Continue))


def only_when(path: list[ast.AST], holds, fails) -> bool:
    """Does the code at the end of `path` (a chain of nodes from a function's body down) run
    only when a condition holds: in a branch whose test says it holds (`holds(test)`), in the
    other branch of one that says it fails, or after an early `if <fails>: return ...`?"""
    for outer, inner in zip(path, path[1:]):
        kind = type(outer)
        if (kind is ast.If or kind is ast.IfExp) and inner is not outer.test:
            branch = outer.body if kind is ast.If else [outer.body]
            if any(node is inner for node in branch):
                if holds(outer.test):
                    return True
            elif fails(outer.test):
                return True
        if _BLOCK_FIELDS.get(kind) == ():
            continue  # a node without blocks (most on a path: calls, assignments, names)
        for block in _blocks(outer):
            for statement in _early_exits_before(block, inner):
                if fails(statement.test):
                    return True
    return False


# Per block (by its first statement, held weakly: trees come and go), the positions of its
# `if ...: return` statements. Asked per finding, so computed once per block.
_EXITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _early_exits_before(block: list[ast.stmt], inner: ast.AST) -> list[ast.If]:
    """The ifs of `block` ending in return/raise/continue that come before `inner` (all of
    them when `inner` is not one of its statements), found by bisection on position: a
    finding in a module of 20,000 statements does not walk the 19,999 others."""
    first = block[0]
    exits = _EXITS.get(first)
    if exits is None:
        exits = _EXITS[first] = [i for i, s in enumerate(block) if isinstance(s, ast.If) and _ends(s.body)]
    if not exits:
        return []
    end = len(block)
    if exits and isinstance(inner, ast.stmt):
        i = bisect.bisect_left(block, (inner.lineno, inner.col_offset), key=lambda s: (s.lineno, s.col_offset))
        if i < len(block) and block[i] is inner:
            end = i
    return [block[i] for i in exits if i < end]


def only_when_unset(path: list[ast.AST], param: str, unset=None) -> bool:
    """Does the code at the end of `path` run only when `param` is None (or holds the sentinel
    `unset`): in the branch for it, after `p or`, or after an early `if p is not None: return ...`?"""
    for outer, inner in zip(path, path[1:]):
        if not unset and isinstance(outer, ast.BoolOp) and isinstance(outer.op, ast.Or):
            position = next(i for i, value in enumerate(outer.values) if value is inner)
            if any(_names(value, param) for value in outer.values[:position]):
                return True
    return only_when(path, lambda test: says_unset(test, param, unset), lambda test: says_set(test, param, unset))


# The fields of each node type that may hold a block (asked per node of every path).
_BLOCK_FIELDS: dict[type, tuple[str, ...]] = {}


def _blocks(node: ast.AST) -> list[list[ast.stmt]]:
    if type(node) is ChunkModule:
        return [node.block()]
    names = _BLOCK_FIELDS.get(type(node))
    if names is None:
        names = _BLOCK_FIELDS[type(node)] = tuple(n for n in ("body", "orelse", "finalbody") if n in type(node)._fields)
    blocks = []
    for name in names:
        block = getattr(node, name, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            blocks.append(block)
    return blocks


def _gpu_count(expr: ast.expr, scope) -> bool:
    """`torch.cuda.device_count()`, a local assigned it, or a product with one (`n_gpus * k`)."""
    if isinstance(expr, ast.Call):
        func = expr.func
        return isinstance(func, ast.Attribute) and func.attr == "device_count"
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mult):
        return _gpu_count(expr.left, scope) or _gpu_count(expr.right, scope)
    if isinstance(expr, ast.Name):
        found = scope.lookup_values(expr.id)
        return found is not None and bool(found[1]) and all(_gpu_count(v, found[0]) for v in found[1])
    return False


def one_gpu(test: ast.expr, scope) -> bool:
    """`torch.cuda.device_count() == 1` (or a count built from it, `num_gpus * per_gpu == 1`):
    only one GPU is visible, so the current device is the one the user left visible."""
    return (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == 1
        and _gpu_count(test.left, scope)
    )


def only_with_one_gpu(path: list[ast.AST], scope) -> bool:
    """Does the code at the end of `path` run only when exactly one GPU is visible (in the
    branch of `device_count() == 1`, or the other branch of `> 1`)?"""
    return only_when(path, lambda test: one_gpu(test, scope), lambda test: several_gpus(test, scope))


def several_gpus(test: ast.expr, scope) -> bool:
    """`torch.cuda.device_count() > 1` / `!= 1`: the other branch has one GPU."""
    return (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Gt, ast.NotEq))
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == 1
        and _gpu_count(test.left, scope)
    )


def says_cpu(test: ast.expr) -> bool:
    """`device.type == "cpu"`, `device == "cpu"`, `str(device) == "cpu"`: the program chose the
    CPU. A GPU picked in that branch (TensorRT needs one) overrides no GPU choice."""
    return _device_is(test, ("cpu",))


def says_off_cuda(test: ast.expr) -> bool:
    """`device == "mps"` or `"cpu"`: the program's device is not a CUDA one (alpaca-lora sets
    "mps" only where CUDA is absent)."""
    return _device_is(test, ("cpu", "mps"))


def says_cuda(test: ast.expr) -> bool:
    """`device == "cuda"`: the branch taken only on a CUDA device."""
    return _device_is(test, ("cuda",))


def says_chose_current(test: ast.expr) -> bool:
    """`device == "cuda"` or `str(device) == "cuda"` (not `device.type == "cuda"`, which
    cuda:1 passes too): the program was given the current device itself, so "cuda" and
    `.cuda()` in that branch are its choice (Grounded-SAM's `if device == "cuda":
    inputs.to("cuda")`)."""
    return _device_is(test, ("cuda",), types=False)


def _device_is(test: ast.expr, kinds: tuple[str, ...], types: bool = True) -> bool:
    """Does `test` compare a device-named value (or its `.type`, unless `types` is off) for
    equality with one of `kinds`, written as a string or `torch.device("cuda")`, alone or in
    an `or` of such comparisons (`device == "cuda" or device == torch.device("cuda")`)?"""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return all(_device_is(value, kinds, types) for value in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    if not any(_spells(side, kinds) for side in sides):
        return False
    for side in sides:
        if isinstance(side, ast.Attribute) and side.attr == "type":
            if not types:
                continue
            side = side.value
        elif isinstance(side, ast.Call) and isinstance(side.func, ast.Name) and side.func.id == "str" and len(side.args) == 1:
            side = side.args[0]
        name = side.id if isinstance(side, ast.Name) else side.attr if isinstance(side, ast.Attribute) else ""
        if name and ("device" in name.lower() or name.lower() in ("dev", "gpu")):
            return True
    return False


def _spells(expr: ast.expr, kinds: tuple[str, ...]) -> bool:
    """`"cuda"`, or `torch.device("cuda")`: one of `kinds`, written out."""
    if isinstance(expr, ast.Call) and len(expr.args) == 1 and not expr.keywords:
        func = expr.func
        if (isinstance(func, ast.Attribute) and func.attr == "device") or (isinstance(func, ast.Name) and func.id == "device"):
            expr = expr.args[0]
    return isinstance(expr, ast.Constant) and expr.value in kinds


def _is_cuda(test: ast.expr, name: str) -> bool:
    """`name.is_cuda`, `name.device.type == "cuda"`: the tensor is on a GPU."""
    if isinstance(test, ast.Attribute) and test.attr == "is_cuda":
        return _names(test.value, name)
    return _device_type_is(test, name, "cuda", ast.Eq) or _device_type_is(test, name, "cpu", ast.NotEq)


def _off_gpu(test: ast.expr, name: str) -> bool:
    """`not name.is_cuda`, `name.is_cpu`, `name.device.type != "cuda"` / `== "cpu"`."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _is_cuda(test.operand, name)
    if isinstance(test, ast.Attribute) and test.attr == "is_cpu":
        return _names(test.value, name)
    return _device_type_is(test, name, "cuda", ast.NotEq) or _device_type_is(test, name, "cpu", ast.Eq)


def _device_type_is(test: ast.expr, name: str, kind: str, op: type) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], op)):
        return False
    left, right = test.left, test.comparators[0]
    if isinstance(left, ast.Constant):
        left, right = right, left
    return (
        isinstance(right, ast.Constant)
        and right.value == kind
        and isinstance(left, ast.Attribute)
        and left.attr == "type"
        and isinstance(left.value, ast.Attribute)
        and left.value.attr == "device"
        and _names(left.value.value, name)
    )


def only_off_gpu(path: list[ast.AST], name: str) -> bool:
    """Does the code at the end of `path` run only when the tensor `name` is not on a GPU
    (`if not x.is_cuda: x = x.cuda()`, `x if x.is_cuda else x.cuda()`)?"""
    return only_when(path, lambda test: _off_gpu(test, name), lambda test: _is_cuda(test, name))
