"""What device an expression denotes, as far as the source says.

`"cuda"`, `torch.device("cuda")` and a name assigned one of them all mean "the
current device" (GPU0 unless the thread selected another); `"cuda:0"` and
`torch.device("cuda", 0)` pin GPU0; `f"cuda:{rank}"` is an explicit choice. When
a name is assigned several values (`"cuda" if ok else "cpu"`), the worst one wins:
the line that can leak is the one to show.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from enum import IntEnum

from devlint.static.names import qualname
from devlint.static.scope import Scope

_INDEXED = re.compile(r"cuda:\s*\d+")
_NON_CUDA = frozenset({"cpu", "meta", "mps", "xla", "xpu", "hpu", "mtia", "npu", "lazy", "privateuseone"})
_MAX_DEPTH = 6


class Kind(IntEnum):
    UNKNOWN = 0
    NOT_CUDA = 1  # cpu, meta, mps...
    INDEXED = 2  # cuda with an explicit index other than a literal 0, or a tensor's device
    GPU0 = 3  # cuda:0 written out
    CURRENT = 4  # cuda without an index: whatever device is current in the calling thread


@dataclass(frozen=True)
class Device:
    kind: Kind
    node: ast.expr | None = None  # the literal or expression that decides the kind


UNKNOWN = Device(Kind.UNKNOWN)


def string_kind(text: str) -> Kind:
    text = text.strip()
    if text == "cuda":
        return Kind.CURRENT
    if text in ("cuda:0", "cuda:00"):
        return Kind.GPU0
    if _INDEXED.fullmatch(text):
        return Kind.INDEXED
    if text.split(":")[0] in _NON_CUDA:
        return Kind.NOT_CUDA
    return Kind.UNKNOWN


def _worst(devices) -> Device:
    best = UNKNOWN
    for device in devices:
        if device.kind > best.kind:
            best = device
    return best


def _is_torch_device(call: ast.Call, scope: Scope) -> bool:
    return qualname(call.func, scope) == "torch.device"


def _torch_device_call(call: ast.Call, scope: Scope, depth: int) -> Device:
    args = list(call.args)
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    type_arg = args[0] if args else kw.get("type")
    index_arg = args[1] if len(args) > 1 else kw.get("index")
    if type_arg is None:
        return UNKNOWN
    if index_arg is not None:
        base = classify(type_arg, scope, depth + 1)
        if base.kind == Kind.CURRENT:
            if (isinstance(index_arg, ast.Constant) and index_arg.value == 0) or counts_from_zero(index_arg, scope):
                return Device(Kind.GPU0, call)
            return Device(Kind.INDEXED, call)
        return Device(base.kind if base.kind == Kind.NOT_CUDA else Kind.UNKNOWN, call)
    if _modulo_gpu_count(type_arg) and counts_from_zero(type_arg, scope):
        return Device(Kind.GPU0, call)  # torch.device(i % n_gpus) for i in range(n)
    inner = classify(type_arg, scope, depth + 1, ints_are_devices=True)
    if inner.kind in (Kind.CURRENT, Kind.GPU0) and inner.node is type_arg:
        return Device(inner.kind, call)  # torch.device("cuda"): report the whole call
    return inner


def classify(expr: ast.expr | None, scope: Scope, depth: int = 0, ints_are_devices: bool = True) -> Device:
    """The device `expr` denotes when used where a device is expected."""
    if expr is None or depth > _MAX_DEPTH:
        return UNKNOWN
    if isinstance(expr, ast.Constant):
        value = expr.value
        if isinstance(value, str):
            return Device(string_kind(value), expr)
        if ints_are_devices and isinstance(value, int) and not isinstance(value, bool):
            return Device(Kind.GPU0 if value == 0 else Kind.INDEXED, expr)
        return UNKNOWN
    if isinstance(expr, ast.JoinedStr):
        head = expr.values[0] if expr.values else None
        if isinstance(head, ast.Constant) and str(head.value).startswith("cuda"):
            if len(expr.values) == 1:
                return Device(string_kind(head.value), expr)
            if len(expr.values) == 2 and head.value == "cuda:" and counts_from_zero(expr.values[1].value, scope):
                return Device(Kind.GPU0, expr)  # f"cuda:{i}" for i in range(n)
            return Device(Kind.INDEXED, expr)
        return UNKNOWN
    if isinstance(expr, ast.BinOp) and isinstance(expr.left, ast.Constant):
        left = expr.left.value
        if isinstance(left, str) and left.startswith("cuda:"):
            if left in ("cuda:", "cuda:%d", "cuda:%s") and counts_from_zero(expr.right, scope):
                return Device(Kind.GPU0, expr)
            return Device(Kind.INDEXED, expr)  # "cuda:" + str(i), "cuda:%d" % i
        return UNKNOWN
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "format" and isinstance(func.value, ast.Constant):
            if str(func.value.value).startswith("cuda:"):
                if func.value.value == "cuda:{}" and len(expr.args) == 1 and counts_from_zero(expr.args[0], scope):
                    return Device(Kind.GPU0, expr)  # "cuda:{}".format(i) for i in range(n)
                return Device(Kind.INDEXED, expr)
            return UNKNOWN
        if _is_torch_device(expr, scope):
            return _torch_device_call(expr, scope, depth)
        name = qualname(func, scope)
        if name in ("torch.cuda.current_device", "torch.accelerator.current_device_index"):
            return Device(Kind.INDEXED, expr)
        return UNKNOWN
    if isinstance(expr, ast.IfExp):
        return _worst(
            classify(e, scope, depth + 1, ints_are_devices) for e in (expr.body, expr.orelse)
        )
    if isinstance(expr, ast.BoolOp):
        return _worst(classify(e, scope, depth + 1, ints_are_devices) for e in expr.values)
    if isinstance(expr, ast.Name):
        found = scope.lookup_values(expr.id)
        if found is None:
            return UNKNOWN
        owner, values = found
        # Plain ints assigned to a name are devices only when the name says so.
        ints = names_a_device(expr.id)
        return _worst(classify(v, owner, depth + 1, ints) for v in values)
    if isinstance(expr, ast.Attribute):
        if expr.attr == "device":
            if isinstance(expr.value, ast.Name) and expr.value.id == "self":
                return _self_attr(expr, scope, depth)
            return Device(Kind.INDEXED, expr)  # x.device: follows a tensor
        if isinstance(expr.value, ast.Name) and expr.value.id == "self":
            return _self_attr(expr, scope, depth)
    return UNKNOWN


def _modulo_gpu_count(expr: ast.expr) -> bool:
    """`i % num_gpus`, `i % torch.cuda.device_count()`: workers dealt out over every GPU."""
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod)):
        return False
    divisor = expr.right
    if isinstance(divisor, ast.Call):
        func = divisor.func
        return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "device_count"
    name = divisor.attr if isinstance(divisor, ast.Attribute) else getattr(divisor, "id", "")
    return "gpu" in name.lower()


def counts_from_zero(expr: ast.expr, scope: Scope) -> bool:
    """`i`, `i % n` or `str(i)` where `i` counts 0, 1, 2, ... in a loop (`for i in range(n)`,
    `enumerate`): the devices it makes always include GPU0."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
        expr = expr.left
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in ("str", "int") and len(expr.args) == 1:
        expr = expr.args[0]
    if not isinstance(expr, ast.Name):
        return False
    found = scope.lookup_values(expr.id)
    if found is None:
        return False
    owner, values = found
    counters = owner.counters.get(expr.id, [])
    return len(counters) == len(values) and all(counters) and bool(counters)


def _self_attr(expr: ast.Attribute, scope: Scope, depth: int) -> Device:
    function = scope.function
    cls = function.enclosing_class if function else None
    if cls is None:
        return UNKNOWN
    ints = names_a_device(expr.attr)
    return _worst(
        classify(value, cls.child(method), depth + 1, ints)
        for method, value in cls.self_attrs.get(expr.attr, [])
    )


_DEVICE_NAME = re.compile(r"(^|_)(device|dev|gpu|gpu_id|device_id|cuda_device)(_|$)", re.I)


def names_a_device(name: str) -> bool:
    """`device`, `target_device`, `gpu_id`: names that hold a device choice."""
    return bool(_DEVICE_NAME.search(name))
