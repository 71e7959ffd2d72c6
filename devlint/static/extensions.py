"""Which C++/CUDA files a call that builds an extension names, as written in its source list.

`torch.utils.cpp_extension.load(name, sources=[...])` and a setup script's
`CUDAExtension(name, sources)` take paths relative to the script's directory, written as
literals, `os.path.join(here, "src", "op.cu")` (the leading non-literal part is the script's
directory), a comprehension over literal names (`[os.path.join(here, "src", f) for f in
["op.cu", "bindings.cpp"]]`, torch-ngp's five extensions), a sum of such lists, or a name
assigned one of these. Anything else (`glob.glob(...)`, a path read from a config) is not
evaluated: the caller decides what an unknown list stands for.
"""

from __future__ import annotations

import ast
import posixpath

from devlint.static.scope import Scope

_JOINS = frozenset({"join"})  # os.path.join, posixpath.join: the last attribute is enough


def listed_paths(expr: ast.expr | None, scope: Scope) -> list[str] | None:
    """The relative paths a source list names, or None when one of them is not written out."""
    return _paths(expr, scope, {}, 0)


def _paths(expr: ast.expr | None, scope: Scope, bound: dict[str, str], depth: int) -> list[str] | None:
    if expr is None or depth > 8:
        return None
    if isinstance(expr, (ast.List, ast.Tuple)):
        found: list[str] = []
        for element in expr.elts:
            part = _paths(element, scope, bound, depth + 1)
            if part is None:
                return None
            found += part
        return found
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        left, right = _paths(expr.left, scope, bound, depth + 1), _paths(expr.right, scope, bound, depth + 1)
        return None if left is None or right is None else left + right
    if isinstance(expr, ast.ListComp) and len(expr.generators) == 1 and not expr.generators[0].ifs:
        loop = expr.generators[0]
        names = _paths(loop.iter, scope, bound, depth + 1)
        if names is None or not isinstance(loop.target, ast.Name):
            return None
        found = []
        for name in names:
            one = _path(expr.elt, scope, {**bound, loop.target.id: name}, depth + 1)
            if one is None:
                return None
            found.append(one)
        return found
    if isinstance(expr, ast.Name) and expr.id not in bound:
        assigned = scope.lookup_values(expr.id)
        if assigned is None or len(assigned[1]) != 1:
            return None
        return _paths(assigned[1][0], assigned[0], bound, depth + 1)
    one = _path(expr, scope, bound, depth)
    return None if one is None else [one]


def _path(expr: ast.expr, scope: Scope, bound: dict[str, str], depth: int) -> str | None:
    """One path: a literal, a loop variable bound to one, a name assigned one, or
    `os.path.join(dir, *parts)`."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.Name) and expr.id in bound:
        return bound[expr.id]
    if isinstance(expr, ast.Name) and depth <= 8:
        assigned = scope.lookup_values(expr.id)  # `src = os.path.join(here, "src")`
        if assigned is not None and len(assigned[1]) == 1:
            return _path(assigned[1][0], assigned[0], bound, depth + 1)
        return None
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in _JOINS and expr.args:
        parts = [_path(arg, scope, bound, depth + 1) for arg in expr.args]
        start = next((i for i, part in enumerate(parts) if part is not None), len(parts))
        if start == len(parts) or any(part is None for part in parts[start:]):
            return None  # nothing written out, or an unknown part after the directory
        return posixpath.normpath(posixpath.join(*parts[start:]))
    return None


def listed_strings(expr: ast.expr | None, scope: Scope, depth: int = 0) -> list[str]:
    """The source texts `load_inline` compiles: string literals, lists of them, names
    assigned one; [] when they are not written out."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if depth > 8:
        return []
    if isinstance(expr, (ast.List, ast.Tuple)):
        return [text for element in expr.elts for text in listed_strings(element, scope, depth + 1)]
    if isinstance(expr, ast.Name):
        assigned = scope.lookup_values(expr.id)
        if assigned is not None and len(assigned[1]) == 1:
            return listed_strings(assigned[1][0], assigned[0], depth + 1)
    return []
