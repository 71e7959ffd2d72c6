"""Where source code says where a tensor goes: factories and device-taking positions.

Shared by the rules about device values (DL002, DL008, DL010) and about tensors
built without one (DL001, DL003, DL011). The factory list and the calls that
take a device without acting on it come from the catalog.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from devlint import catalog
from devlint.static import values
from devlint.static.context import FileContext
from devlint.static.names import argument, encloses, keyword
from devlint.static.scope import _shallow

# Methods that keep a tensor where it is: `torch.arange(n).float().cuda()` is still
# a factory result when `.cuda()` runs.
_KEEPS_DEVICE = frozenset(
    {
        "float", "double", "half", "bfloat16", "long", "int", "short", "bool", "byte", "char",
        "view", "reshape", "unsqueeze", "unsqueeze_", "squeeze", "squeeze_", "repeat", "expand",
        "flip", "t", "transpose", "permute", "contiguous", "clone", "detach", "requires_grad_",
        "mul", "mul_", "add", "add_", "sub", "sub_", "div", "div_", "pow", "neg",
        "fill_", "zero_", "normal_", "uniform_", "exp", "log", "sqrt", "abs", "clamp", "clamp_",
    }
)


# Catalog tables in the shapes the checks look them up in, built once: they are read for
# every call in every file.


@functools.cache
def factories() -> frozenset[str]:
    return frozenset(catalog.api("DL011", "factories", []))


@functools.cache
def _no_effect_calls() -> frozenset[str]:
    return frozenset(catalog.api("DL006", "no_effect", []))


@functools.cache
def loaders() -> dict[str, int]:
    """Checkpoint loaders and the position of their `map_location`."""
    return {entry["name"]: entry["map_location_position"] for entry in catalog.api("DL005", "loaders", [])}


@functools.cache
def downloads() -> frozenset[str]:
    """Loaders of published weights by URL, which DL005 leaves to the runtime."""
    return frozenset(entry["name"] for entry in catalog.api("DL005", "downloads", []))


@functools.cache
def cpu_checkpoint_keys() -> frozenset[str]:
    """Keys of checkpoint layouts whose writer saves CPU tensors (BasicSR's `params_ema`)."""
    return frozenset(key for entry in catalog.api("DL005", "cpu_checkpoint_keys", []) for key in entry["keys"])


@functools.cache
def legacy_constructors() -> dict[str, str]:
    """`FloatTensor` -> `torch.float32`, for the typed constructors under torch.cuda."""
    return catalog.api("DL004", "constructors", {})


def legacy_cuda_type(name: str | None) -> str | None:
    """`torch.cuda.FloatTensor` (a qualified name or a type string) -> `FloatTensor`."""
    prefix = "torch.cuda."
    if name and name.startswith(prefix) and name[len(prefix):] in legacy_constructors():
        return name[len(prefix):]
    return None


def type_string_of(expr: ast.expr) -> ast.expr | None:
    """`y` of `y.type()` (no arguments): a type string naming y's device type, not its index."""
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "type"
        and not expr.args
        and not expr.keywords
    ):
        return expr.func.value
    return None


def unplaced_factory(ctx: FileContext, expr: ast.expr) -> ast.Call | None:
    """The factory call at the root of `expr` if it was built without `device=` (once per
    expression and scope: DL001, DL011 and DL002 ask it of the same receiver)."""
    known = ctx.memo("unplaced factories", dict)
    key = (expr, id(ctx.scope))
    if key not in known:
        known[key] = _unplaced_factory(ctx, expr)
    return known[key]


def _unplaced_factory(ctx: FileContext, expr: ast.expr) -> ast.Call | None:
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in _KEEPS_DEVICE:
        expr = expr.func.value
    if not isinstance(expr, ast.Call):
        return None
    name = ctx.qualname(expr.func)
    if name is None or name not in factories():
        return None
    if keyword(expr, "device") is not None or any(kw.arg is None for kw in expr.keywords):
        return None
    return expr


def moves_to_current_device(ctx: FileContext, move: ast.Call) -> bool:
    """`.cuda()`, or `.to("cuda")` with the device written at this call: the move DL011 reports
    on the factory it copies. `.to(device)` follows the program's own choice, and a "cuda"
    chosen elsewhere is reported where it is chosen (DL002)."""
    device = argument(move, "device", 0)
    if move.func.attr == "cuda":
        return device is None or (isinstance(device, ast.Constant) and device.value is None)
    if device is None:
        return False
    judged = ctx.device(device)
    return judged.current and judged.node is not None and encloses(device, judged.node)


def cpu_rooted(ctx: FileContext, expr: ast.expr) -> ast.Call | None:
    """A factory without a device, or `torch.from_numpy`/`torch.Tensor(...)`, at the root of `expr`
    (directly or through a local name assigned once from one): a tensor that starts on the CPU."""
    if isinstance(expr, ast.Name):
        found = ctx.scope.lookup_values(expr.id)
        if found is None or len(found[1]) != 1:
            return None
        expr = found[1][0]
    elif isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
        return _cpu_attribute(ctx, expr.attr)
    root = unplaced_factory(ctx, expr)
    if root is not None:
        return root
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in _KEEPS_DEVICE:
        expr = expr.func.value
    if isinstance(expr, ast.Call) and ctx.qualname(expr.func) in ("torch.from_numpy", "torch.Tensor", "torch.FloatTensor", "torch.LongTensor"):
        return expr
    return None


def _cpu_attribute(ctx: FileContext, attr: str) -> ast.Call | None:
    """`self.<attr>` that every method assigns a tensor built on the CPU, as a plain attribute
    (not a parameter or buffer, which moving the module would move): it stays on the CPU."""
    function = ctx.scope.function
    cls = function.enclosing_class if function is not None else None
    assigned = cls.self_attrs.get(attr, []) if cls is not None else []
    roots = [unplaced_factory(ctx, value) for _, value in assigned]
    return roots[0] if roots and all(root is not None for root in roots) else None


def without_effect(ctx: FileContext, node: ast.AST | None) -> bool:
    """Is `node` a call that takes a device but never allocates or creates a context there
    (`torch.cuda.get_device_properties(torch.device("cuda"))`: catalog DL006 `no_effect`)?"""
    return isinstance(node, ast.Call) and ctx.qualname(node.func) in _no_effect_calls()


def device_arguments(ctx: FileContext, call: ast.Call) -> Iterator[ast.expr]:
    """Expressions this call uses as the device to put data on."""
    func = call.func
    name = ctx.qualname(func)
    if name is not None and (name in _no_effect_calls() or name in ("torch.set_default_device", "torch.device")):
        return
    if isinstance(func, ast.Attribute) and name is None:
        if func.attr == "to":
            first = argument(call, "device", 0)
            if first is not None:
                yield first
            return
        if func.attr == "cuda":
            dev = argument(call, "device", 0)
            if dev is not None:
                yield dev
            return
    for kw in call.keywords:
        if kw.arg in ("device", "output_device"):
            if not ctx.index.never_reads(name, kw.arg):
                yield kw.value
        elif kw.arg == "map_location":
            yield from _map_location_targets(kw.value)
        elif kw.arg == "device_ids":
            yield from _listed(kw.value)
    if name in _data_parallel():  # DataParallel(module, device_ids, output_device)
        positional = [a for a in call.args[1:3] if not isinstance(a, ast.Starred)]
        if positional:
            yield from _listed(positional[0])
        if len(positional) > 1:
            yield positional[1]
    if name in loaders():
        loc = argument(call, "map_location", loaders()[name])
        if loc is not None and keyword(call, "map_location") is None:
            yield from _map_location_targets(loc)


@dataclass(frozen=True)
class DeviceParameter:
    """A parameter of a project function that its body uses as a device (`net.to(dev)`), or
    whose first element it uses as one (`net.to(gpu_ids[0])`)."""

    name: str
    position: int | None
    first_element: bool = False


def passed_as_device(ctx: FileContext, call: ast.Call, every: bool = False) -> Iterator[tuple[ast.expr, DeviceParameter]]:
    """The arguments of a call of one of the project's functions (this module's, or another's
    through the index) that its body uses as a device, by position or under a keyword that
    does not say so (`load(path, "cuda")`, `make_net(gpu_ids=[0])`). A parameter the
    function only compares is not one. Only those that may be the current device or GPU0,
    unless `every`."""
    function = values.module_function(call.func, ctx.scope)
    if function is None:
        func = call.func
        last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if last not in ctx.memo("device parameter names", ctx.index.device_parameter_names):
            return
    else:  # this module's function: its body read once, before the arguments of each call
        params = ctx.memo(f"device parameters {id(function)}", lambda: device_parameters(ctx, function))
        if not params:
            return
    if not every and not any(_may_leak(ctx, a) for a in [*call.args, *(k.value for k in call.keywords)]):
        return
    if function is None:  # a project function of another module: its summary in the index
        params = [DeviceParameter(*entry) for entry in ctx.index.device_parameters(ctx.qualname(call.func))]
    for param in params:
        arg = argument(call, param.name, param.position)
        if arg is None or (keyword(call, param.name) is not None and param.name in ("device", "output_device", "map_location")):
            continue
        if not param.first_element:
            yield arg, param
        elif isinstance(arg, (ast.List, ast.Tuple)) and arg.elts and not isinstance(arg.elts[0], ast.Starred):
            yield arg.elts[0], param


def _may_leak(ctx: FileContext, arg: ast.expr) -> bool:
    """Is the argument (or a literal list's first element) the current device or GPU0? Asked
    before another module's function is looked up in the index."""
    if isinstance(arg, (ast.List, ast.Tuple)) and arg.elts:
        arg = arg.elts[0]
    value = ctx.device(arg)
    return value.current or value.gpu0


def device_parameters(ctx: FileContext, function: ast.FunctionDef | ast.AsyncFunctionDef, method: bool = False) -> list[DeviceParameter]:
    """The parameters of a module-level function (or, with `method`, a class's `__init__`, its
    `self` not counted) that its own body uses as a device: placed on, or selected
    (`torch.cuda.set_device(gpu_id)`: IDM-VTON's `OpenPose(0)`)."""
    saved, ctx.scope = ctx.scope, values.scope_of(function, ctx.scope)
    try:
        scope = ctx.scope
        positional = [a.arg for a in function.args.posonlyargs + function.args.args][1 if method else 0:]
        found: dict[str, DeviceParameter] = {}
        for node in _shallow(function.body):
            if not isinstance(node, ast.Call):
                continue
            used = list(device_arguments(ctx, node))
            if ctx.qualname(node.func) in ("torch.device", "torch.cuda.set_device") and node.args:
                used.append(node.args[0])
            for expr in used:
                first = isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Constant) and expr.slice.value == 0
                name = expr.value if first else expr
                if isinstance(name, ast.Name) and name.id in scope.params and name.id not in scope.assigns:
                    position = positional.index(name.id) if name.id in positional else None
                    found.setdefault(name.id, DeviceParameter(name.id, position, first))
        return list(found.values())
    finally:
        ctx.scope = saved


def path_key(expr: ast.expr | None) -> str | None:
    """The written end of a file path (`"feats.pt"` of `os.path.join(out, "feats.pt")`,
    `f"{name}_feats.pt"`, `out + "/feats.pt"`): what a save and a load of one file share."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        text = expr.value
    elif isinstance(expr, ast.JoinedStr) and expr.values and isinstance(expr.values[-1], ast.Constant):
        text = str(expr.values[-1].value)
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return path_key(expr.right)
    elif isinstance(expr, ast.Call) and expr.args and getattr(expr.func, "attr", "") == "join":
        return path_key(expr.args[-1])
    else:
        return None
    name = text.rsplit("/", 1)[-1]
    return name if "." in name.strip(".") else None


_CPU_ENDS = frozenset({"cpu", "numpy", "tolist", "item"})


def saved_from_cpu(expr: ast.expr, scope, depth: int = 0) -> bool:
    """Is a value written from the CPU: `x.cpu()`, `x.detach().cpu().numpy()`, a dict or list
    of those, or a name assigned only those?"""
    if depth > 4:
        return False
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        return expr.func.attr in _CPU_ENDS
    if isinstance(expr, ast.Dict):
        return bool(expr.values) and all(saved_from_cpu(v, scope, depth + 1) for v in expr.values)
    if isinstance(expr, (ast.List, ast.Tuple)):
        return bool(expr.elts) and all(saved_from_cpu(e, scope, depth + 1) for e in expr.elts)
    if isinstance(expr, ast.DictComp):
        return saved_from_cpu(expr.value, scope, depth + 1)
    if isinstance(expr, ast.Name):
        found = scope.lookup_values(expr.id)
        return found is not None and all(saved_from_cpu(v, found[0], depth + 1) for v in found[1])
    return False


def _listed(expr: ast.expr) -> Iterator[ast.expr]:
    """The elements of a literal list of devices (`device_ids=[0, 1]`)."""
    if isinstance(expr, (ast.List, ast.Tuple)):
        yield from (e for e in expr.elts if not isinstance(e, ast.Starred))


@functools.cache
def _data_parallel() -> frozenset[str]:
    return frozenset(catalog.api("DL007", "wrappers", []))


def _map_location_targets(expr: ast.expr) -> Iterator[ast.expr]:
    """`map_location` may be a device, or a dict whose values are target devices."""
    if isinstance(expr, ast.Dict):
        yield from (v for v in expr.values if v is not None)
    elif not isinstance(expr, ast.Lambda):
        yield expr


def assignment_targets(node: ast.Assign | ast.AnnAssign) -> Iterator[str]:
    """Names of what an assignment binds, as written: `device`, `self.device`, `cfg["device"]`."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for target in targets:
        if isinstance(target, ast.Name):
            yield target.id
        elif isinstance(target, ast.Attribute):
            yield target.attr
        elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
            if isinstance(target.slice.value, str):
                yield target.slice.value


_SELECTION_NAME = re.compile(r"(^|_)(device|dev)(_|$)", re.I)


def selection_value(node: ast.Assign | ast.AnnAssign) -> ast.expr | None:
    """The value of a device-selection line (`device = ...`, `args.device = ...`), else None."""
    if node.value is None:
        return None
    for name in assignment_targets(node):
        if "dev" in name.lower() and _SELECTION_NAME.search(name):  # the word first: asked of every assignment, twice
            return node.value
    return None


def dict_device_values(node: ast.Dict) -> Iterator[ast.expr]:
    for key, value in zip(node.keys, node.values):
        if isinstance(key, ast.Constant) and key.value in ("device", "map_location"):
            yield value
