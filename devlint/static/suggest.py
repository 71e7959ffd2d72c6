"""The device (or device index) a fix should use: an expression already in scope.

A fix that writes `device` must only do so where `device` exists and holds the
program's choice. The search goes from the narrowest evidence to the widest: a
`device` parameter or local, `self.device`, the `.device` of a tensor parameter the
function already reads it from, `args.device`-style configuration, a module-level
`device`. When nothing qualifies the fix is display-only and says what to thread.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from devlint.static.scope import Scope, _shallow

_DEVICE_NAMES = ("device", "dev", "torch_device")
_DEVICE_LIKE = re.compile(r"(^|_)device$")
INDEX_NAMES = ("local_rank", "gpu_id", "gpu", "device_id", "gpu_index", "device_index", "cuda_id")


@dataclass(frozen=True)
class Suggestion:
    expr: str  # source text to write, e.g. "device" or "x.device"
    local: bool  # found in the enclosing function or class (strong evidence of intent)


def _assigned_before(scope: Scope, name: str, line: int) -> bool:
    """Is `name` assigned something other than None before `line` (or anywhere, for values
    without a position)?"""
    for value in scope.assigns.get(name, []):
        if isinstance(value, ast.Constant) and value.value is None:
            continue
        lineno = getattr(value, "lineno", None)
        if lineno is None or lineno <= line:
            return True
    return False


def _local_device(scope: Scope, line: int) -> str | None:
    candidates = [n for n in scope.params] + [n for n in scope.assigns if _assigned_before(scope, n, line)]
    for name in _DEVICE_NAMES:
        if name in candidates:
            return name
    for name in candidates:
        if _DEVICE_LIKE.search(name):
            return name
    return None


def _device_attribute(cls: Scope) -> str | None:
    """The attribute a class keeps its device in: `self.device`, else `self.dev`,
    `self._device`, `self.torch_device`, `self.<something>_device`."""
    attrs = cls.self_attrs
    for name in (*_DEVICE_NAMES, "_device"):
        if name in attrs:
            return name
    return next((name for name in sorted(attrs) if _DEVICE_LIKE.search(name)), None)


def device_in_scope(scope: Scope, node: ast.AST, module: Scope) -> Suggestion | None:
    """An expression naming the intended device at `node`, or None."""
    line = node.lineno
    chain = []
    function = scope.function
    while function is not None:
        chain.append(function)
        function = function.parent.function if function.parent is not None else None
    for fn in chain:
        found = _local_device(fn, line)
        if found:
            return Suggestion(found, True)
    if chain:
        inner = chain[0]
        cls = inner.enclosing_class
        if cls is not None and "self" in inner.params:
            attr = _device_attribute(cls)
            if attr is not None:
                return Suggestion(f"self.{attr}", True)
        uses = inner.attribute_uses
        for name in inner.params:
            if name != "self" and (name, "device") in uses:
                return Suggestion(f"{name}.device", True)
        for name, attr in sorted(uses):
            if attr == "device" and name not in ("self", "torch") and (
                name in inner.params or name in inner.assigns or name in module.assigns
            ):
                return Suggestion(f"{name}.device", False)
    for name in _DEVICE_NAMES:
        if name in module.assigns and (chain or _assigned_before(module, name, line)):
            return Suggestion(name, not chain)
    return None


# Reads that only a tensor answers (numpy arrays also have `shape`, so it takes two of them,
# or one of the torch-only ones).
_TORCH_ONLY_USES = frozenset({"device", "is_cuda", "size", "dim", "unsqueeze", "permute", "type_as", "new_zeros", "new_ones", "new_full", "new_empty", "detach", "contiguous"})
_ARRAY_USES = frozenset({"shape", "dtype", "view", "reshape", "transpose", "squeeze", "float", "ndim"})


def input_device(method: Scope) -> Suggestion | None:
    """`x.device` for the first parameter a torch module's method (`forward`) works on as a
    tensor: it reads one of the tensor's own attributes, or hands it to a submodule
    (`self.encoder(x)`) or to torch (`torch.cat((x, y))`). The module's parameters are wherever
    the program moved the module, and its input is there too: that is the device its own tensors
    belong on."""
    uses = method.attribute_uses
    handed = _handed_to_torch_or_submodule(method)
    arguments = method.node.args
    for name in [a.arg for a in arguments.posonlyargs + arguments.args][1:]:
        attrs = {attr for owner, attr in uses if owner == name}
        if attrs & _TORCH_ONLY_USES or len(attrs & _ARRAY_USES) >= 2 or name in handed:
            return Suggestion(f"{name}.device", True)
    return None


def _handed_to_torch_or_submodule(method: Scope) -> set[str]:
    """Names the method passes by position to `self.<submodule>(...)` or a `torch.` function."""
    handed: set[str] = set()
    for node in _shallow(method.body):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        root = func
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(func, ast.Attribute) and isinstance(root, ast.Name) and root.id in ("self", "torch"):
            for arg in node.args:
                for element in arg.elts if isinstance(arg, (ast.Tuple, ast.List)) else [arg]:
                    if isinstance(element, ast.Name):
                        handed.add(element.id)
    return handed


def index_in_scope(scope: Scope, node: ast.AST, module: Scope) -> str | None:
    """An expression holding the GPU index the program was told to use, or None."""
    line = node.lineno
    scopes = []
    s: Scope | None = scope.function
    while s is not None:
        scopes.append(s)
        s = s.parent.function if s.parent is not None else None
    scopes.append(module)
    for s in scopes:
        for name in INDEX_NAMES:
            if name in s.params or (name in s.assigns and _assigned_before(s, name, line)):
                return name
    for s in scopes:
        uses = s.attribute_uses
        for owner, attr in sorted(uses):
            if attr in INDEX_NAMES and owner not in ("self", "torch", "os"):
                return f"{owner}.{attr}"
    return None
