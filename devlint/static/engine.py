"""One walk over a module's tree, dispatching each node to the checks that want it.

The walk is iterative (deeply nested expressions must not overflow the stack) and
keeps `ctx.scope` and `ctx.ancestors` current for the checks. The engine is given
its checks (devlint.checks.all_checks(), or the index's collector); it never imports them.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

from devlint import catalog
from devlint.static.context import FileContext
from devlint.static import walk
from devlint.static.parts import ChunkModule, NotChunkable



class Check:
    """A rule's logic: `visit_<Node>(node, ctx)` methods called by the engine's one walk."""

    code: ClassVar[str]

    def wanted(self, ctx: FileContext) -> bool:
        """Can this file hold a finding of this check? Asked once per file, so that a check
        is not called on every node of a file it cannot fire on. By default: does the text
        contain one of the rule's triggers, which every file with a finding of it contains
        (a rule without triggers, such as DL012 whose names come from the index, always runs)."""
        rule = catalog.load().get(self.code)  # None for a walker that is no rule (static/callers.py)
        words = rule.triggers if rule is not None else ()
        text = ctx.source.text
        return not words or any(word in text for word in words)

    def callees(self) -> Callees | None:
        """The calls `visit_Call` can act on, when it acts on few: the engine then calls it for
        those alone, not for every call of the file (None: every call)."""
        return None


@dataclass(frozen=True)
class Callees:
    """Calls a check's `visit_Call` can act on: those whose callee is an attribute named in
    `attributes` (`x.cuda(...)`, `torch.cuda.synchronize(...)`: a qualified name ends in the
    attribute), and, if `names`, every call whose callee is not an attribute (`f(...)`, which
    an import may have renamed from anything)."""

    attributes: frozenset[str]
    names: bool


@dataclass
class Dispatch:
    """The checks' handlers by node type; a call's by its callee (Check.callees)."""

    by_type: dict[type, list] = field(default_factory=dict)
    skipped: frozenset[type] = frozenset()  # leaves no handler wants: not walked
    by_attribute: dict[str, list] = field(default_factory=dict)  # x.<attribute>(...) named by a check
    other_attributes: list = field(default_factory=list)  # x.<attribute>(...) no check names
    not_attributes: list = field(default_factory=list)  # calls whose callee is no attribute

    def __bool__(self) -> bool:
        return bool(self.by_type)


_SCOPE_TYPES = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef})
# Nodes that never hold another (their fields are strings, constants, or the expression
# context walk.FIELDS leaves out): two in five of a tree's nodes. One no handler wants is
# not put on the walk's stack at all.
_LEAVES = frozenset({
    ast.Name, ast.Constant, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal, ast.alias,
    *ast.operator.__subclasses__(), *ast.unaryop.__subclasses__(), *ast.cmpop.__subclasses__(), *ast.boolop.__subclasses__(),
})
_EXIT = object()


def dispatch_table(checks: list[Check]) -> Dispatch:
    """The checks' handlers by node type, and the call handlers by callee. A call's handlers
    run in the checks' order, as for every other node."""
    table: dict[type, list] = defaultdict(list)
    for check in checks:
        for node_type, name in _visitors(type(check)):
            table[node_type].append(getattr(check, name))
    dispatch = Dispatch(dict(table), skipped=_LEAVES.difference(table))
    handlers = table.get(ast.Call, [])
    wanted = [(handler, handler.__self__.callees() if hasattr(handler.__self__, "callees") else None) for handler in handlers]
    named = {attribute for _, callees in wanted if callees is not None for attribute in callees.attributes}
    dispatch.by_attribute = {
        attribute: [h for h, callees in wanted if callees is None or attribute in callees.attributes] for attribute in named
    }
    dispatch.other_attributes = [h for h, callees in wanted if callees is None]
    dispatch.not_attributes = [h for h, callees in wanted if callees is None or callees.names]
    return dispatch


@functools.cache
def _visitors(check_type: type) -> tuple[tuple[type, str], ...]:
    """A check class's `visit_<Node>` methods, by node type (asked for every file checked)."""
    found = []
    for name in dir(check_type):
        if name.startswith("visit_"):
            node_type = getattr(ast, name[len("visit_"):], None)
            if isinstance(node_type, type):
                found.append((node_type, name))
    return tuple(found)


def run(ctx: FileContext, checks: list[Check]) -> None:
    table = dispatch_table(wanted(ctx, checks))
    if table:
        walk_tree(ctx, table)


def wanted(ctx: FileContext, checks: list[Check]) -> list[Check]:
    """The enabled checks that want this file."""
    return [c for c in checks if c.code in ctx.enabled and (not hasattr(c, "wanted") or c.wanted(ctx))]


def walk_tree(ctx: FileContext, table: Dispatch) -> None:
    """Walk `ctx.tree`, calling the handlers. A part of a module (static/parts.py) is walked
    from its statements, as if they were the module's, and a handler too deep to follow
    there has the module checked whole."""
    # The walk is devlint's hot loop (two thirds of a cold run's CPU on torch's sources):
    # walk.children is inlined, and a node without children (half of all nodes: names,
    # constants) is handled without entering it, since no handler can see the difference.
    ancestors = ctx.ancestors
    by_type = table.by_type
    by_attribute, other_attributes, not_attributes = table.by_attribute, table.other_attributes, table.not_attributes
    call_type, attribute_type = ast.Call, ast.Attribute
    skipped = table.skipped
    fields_of = walk.FIELDS
    scope_types = _SCOPE_TYPES
    node_class = ast.AST
    root = ctx.tree
    in_parts = type(root) is ChunkModule
    if in_parts:
        ancestors.append(root)
        stack: list = [_EXIT, *reversed(root.statements)]
    else:
        stack = [root]
    while stack:
        node = stack.pop()
        if node is _EXIT:
            left = ancestors.pop()
            if type(left) in scope_types:
                ctx.scope = ctx.scope.parent
            continue
        node_type = type(node)
        if node_type is call_type:
            func = node.func
            handlers = by_attribute.get(func.attr, other_attributes) if type(func) is attribute_type else not_attributes
        else:
            handlers = by_type.get(node_type)
        if handlers:
            ctx.visiting = node
            for handler in handlers:
                try:
                    handler(node, ctx)
                except RecursionError:
                    if in_parts:
                        raise NotChunkable("too deep") from None
                    continue  # an expression too deep to follow: skip it, check the rest
        fields = fields_of.get(node_type)
        if fields is None:
            fields = walk.fields(node_type)
        below = []
        for name in fields:
            value = getattr(node, name, None)
            kind = value.__class__
            if kind is list:
                for item in value:
                    if item.__class__ not in skipped and isinstance(item, node_class):
                        below.append(item)
            elif kind not in skipped and isinstance(value, node_class):
                below.append(value)
        if node_type in scope_types:
            ctx.scope = ctx.scope.child(node)
        elif not below:
            continue
        ancestors.append(node)
        stack.append(_EXIT)
        below.reverse()
        stack.extend(below)
    ctx.visiting = None
