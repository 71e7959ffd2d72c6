"""Qualified names of expressions, through imports and aliases.

`th.cuda.synchronize` with `import torch as th` is `torch.cuda.synchronize`;
`load` with `from torch import load` is `torch.load`. Receivers of methods are
not typed: `x.cuda()` has no qualified name, and the checks match on the
attribute instead.
"""

from __future__ import annotations

import ast

from devlint.static.scope import Scope


def dotted(expr: ast.expr) -> list[str] | None:
    """`a.b.c` -> ["a", "b", "c"]; None for anything that is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    parts.reverse()
    return parts


def qualname(expr: ast.expr, scope: Scope) -> str | None:
    parts = dotted(expr)
    if parts is None:
        return None
    head = scope.resolve(parts[0])
    if head is None:
        return None
    return ".".join([head, *parts[1:]])


def keyword(call: ast.Call, name: str) -> ast.keyword | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw
    return None


def argument(call: ast.Call, name: str, position: int | None) -> ast.expr | None:
    """The expression passed for a parameter, by keyword or position."""
    kw = keyword(call, name)
    if kw is not None:
        return kw.value
    if position is not None and position < len(call.args):
        arg = call.args[position]
        if not isinstance(arg, ast.Starred) and not any(
            isinstance(a, ast.Starred) for a in call.args[:position]
        ):
            return arg
    return None


def passes_unknown_args(call: ast.Call) -> bool:
    """`f(*args)` or `f(**kwargs)`: any parameter may be passed."""
    return any(isinstance(a, ast.Starred) for a in call.args) or any(
        kw.arg is None for kw in call.keywords
    )


def has_argument(call: ast.Call, name: str, position: int | None) -> bool:
    if keyword(call, name) is not None or passes_unknown_args(call):
        return True
    return position is not None and len(call.args) > position


def encloses(outer: ast.AST, inner: ast.AST) -> bool:
    """Is `inner` written inside `outer` (by source position)?"""
    return (outer.lineno, outer.col_offset) <= (inner.lineno, inner.col_offset) and (
        inner.end_lineno,
        inner.end_col_offset,
    ) <= (outer.end_lineno, outer.end_col_offset)
