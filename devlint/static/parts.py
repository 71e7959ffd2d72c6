"""A very large module checked in parts, so that only one part's tree is alive at a time.

The `ast` tree of a module costs about 6 KB a line (1.3 GB for 200,000 lines), most
of a check's memory. Above `MIN_BYTES`, the module's top-level statements are split
into parts of about `PART_LINES` lines, each parsed alone with its own line numbers.
A first pass binds every part's names into one module scope (imports, which parts
assign each name, device selections), dropping each tree; the second checks the
parts one by one against it.

Only what one part can answer is answered in parts. Anything that would read
another part's code raises `NotChunkable`: a module-level name whose value another
part assigns, a function another part defines, the module's whole body (the
early exits of `guards.only_when` before an earlier part's, a walk of the
module), a handler too deep to follow. The file is then checked whole, as it
always was, so findings and fixes are the same whichever way it was checked
(tests/static/test_parts.py compares both on fixtures and generated modules).
"""

from __future__ import annotations

import ast
import bisect
import re
import warnings

from devlint.static import scope as scopes
from devlint.static import walk

MIN_BYTES = 1 << 20  # smaller files are checked whole (their tree is at most ~200 MB)
PART_LINES = 4_000
_MERGES = 3  # parts joined to one that ends inside a statement, before giving up on parts

# A line that can start a top-level statement: not indented, blank or a comment, and not
# one that continues the statement before it (`else:`, `except ...:`).
_STATEMENT_START = re.compile(r"^(?![\s#]|(?:else|elif|except|finally)\b)", re.MULTILINE)


class NotChunkable(Exception):
    """The answer needs code of another part: check the module whole."""


class ChunkModule(ast.Module):
    """The root of one part: its statements, and no `body`, so that a reader of the whole
    module's body (`ast.walk`, `walk.children`, a scope's `body`) cannot be answered from
    one part's statements by mistake."""

    def __init__(self, statements: list[ast.stmt], exits_before: bool):
        super().__init__()
        self.statements = statements
        self.exits_before = exits_before  # does an earlier part have an early-exit `if` at top level?

    @property
    def body(self):
        raise NotChunkable("the module's whole body")

    def block(self) -> list[ast.stmt]:
        """The module body as guards.only_when reads it (the early exits before a statement):
        this part's statements, when no earlier part holds an early exit."""
        if self.exits_before:
            raise NotChunkable("an early exit in an earlier part")
        return self.statements


def own_nodes(tree: ast.Module):
    """Every node of `tree` (walk.nodes: ast.walk's nodes, in another order), or of a part's
    statements: for a question whose answer, for a node of one top-level statement, lies in
    that statement."""
    if type(tree) is not ChunkModule:
        return walk.nodes(tree)
    return (node for statement in tree.statements for node in walk.nodes(statement))


class _Parts:
    """The parts of one module: their lines, and the bindings of the part being checked."""

    def __init__(self, text: str, filename: str, rows: list[tuple[int, int]], offsets: list[tuple[int, int]]):
        self.text, self.filename, self.rows, self.offsets = text, filename, rows, offsets
        self.current = 0
        self.root: ChunkModule | None = None
        self._bound: scopes.Scope | None = None  # what the current part binds, with its own nodes

    def parse(self, i: int) -> list[ast.stmt]:
        start, end = self.offsets[i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as analyze.parse
            return ast.parse("\n" * (self.rows[i][0] - 1) + self.text[start:end], filename=self.filename).body

    def enter(self, i: int, root: ChunkModule) -> None:
        self.current, self.root, self._bound = i, root, None

    def values(self, many: bool, name: str, recorded):
        """The module's values of `name` (assigns: every value; defs: the last definition),
        if the current part wrote all of them."""
        if (any(part != self.current for part in recorded) if many else recorded != self.current) or self.root is None:
            raise NotChunkable(f"`{name}` is bound in another part")
        if self._bound is None:
            self._bound = scopes.Scope(node=self.root, parent=None, module_name="")
            scopes.bind(self._bound, self.root.statements)
        return (self._bound.assigns if many else self._bound.defs)[name]


class _Appender:
    """What `assigns.setdefault(name, []).append(value)` records while binding a part: the part."""

    def __init__(self, parts: list[int], part: int):
        self._parts, self._part = parts, part

    def append(self, _value) -> None:
        self._parts.append(self._part)


class ChunkedNames(dict):
    """A module scope's `assigns` (or `defs`): its names, in the order the whole module
    binds them, with the parts that bind each. Reading a name's values gives the current
    part's nodes, or raises NotChunkable if another part bound it."""

    def __init__(self, parts: _Parts, many: bool):
        super().__init__()
        self._parts, self._many = parts, many

    def setdefault(self, name, default=None):  # scope.bind: assigns.setdefault(name, []).append(value)
        return _Appender(dict.setdefault(self, name, []), self._parts.current)

    def __setitem__(self, name, _node) -> None:  # scope.bind: defs[name] = node
        dict.__setitem__(self, name, self._parts.current)

    def __getitem__(self, name):
        return self._parts.values(self._many, name, dict.__getitem__(self, name))

    def get(self, name, default=None):
        return self[name] if name in self else default

    def items(self):
        return [(name, self[name]) for name in self]

    def values(self):
        return [self[name] for name in self]


def split(text: str, line_starts: list[int], part_lines: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Rows (first, last + 1) and text offsets of parts of about `part_lines` lines, each
    starting where a top-level statement may start. A split inside a statement (a string or
    bracket spanning lines) is found when the part before it does not parse."""
    rows, offsets = [], []
    first = 1
    total = len(line_starts)
    while first <= total:
        want = first + part_lines
        match = _STATEMENT_START.search(text, line_starts[want - 1]) if want <= total else None
        last = bisect.bisect_right(line_starts, match.start()) if match else total + 1
        rows.append((first, last))
        offsets.append((line_starts[first - 1], line_starts[last - 1] if last <= total else len(text)))
        first = last
    return rows, offsets


def _merged(parts: _Parts, i: int) -> None:
    """Join part `i` with the next (it ended inside a statement)."""
    parts.rows[i : i + 2] = [(parts.rows[i][0], parts.rows[i + 1][1])]
    parts.offsets[i : i + 2] = [(parts.offsets[i][0], parts.offsets[i + 1][1])]


class ModuleInParts(scopes.Scope):
    """The scope of a module checked in parts."""

    parts: _Parts | None = None

    @property
    def attribute_uses(self) -> set[tuple[str, str]]:
        """Scope.attribute_uses, read from every part (parsed again, one at a time) when first asked."""
        if self._attribute_uses is None:
            parts, uses = self.parts, set()
            for i in range(len(parts.rows)):
                statements = parts.root.statements if i == parts.current else parts.parse(i)
                uses.update(
                    (n.value.id, n.attr)
                    for n in scopes._shallow(statements)
                    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                )
            self._attribute_uses = uses
        return self._attribute_uses

    def names_assigned(self, test) -> list[str]:
        """Scope.names_assigned, read from every part (parsed again, one at a time)."""
        parts, found = self.parts, set()
        for i in range(len(parts.rows)):
            bound = scopes.Scope(node=self.node, parent=None, module_name=self.module_name)
            scopes.bind(bound, parts.root.statements if i == parts.current else parts.parse(i))
            found.update(name for name, values in bound.assigns.items() if any(test(v) for v in values))
        return [name for name in self.assigns if name in found]


def module_scope(parts: _Parts, module_name: str) -> tuple[scopes.Scope, list[bool]]:
    """The module scope of all parts (first pass), and for each part whether an earlier one
    has an early-exit `if` at top level. Parses every part once, keeping no tree. Raises
    NotChunkable if a part cannot be parsed alone (the module is then parsed whole, which
    reports its syntax error as it always did)."""
    scope = ModuleInParts(node=ChunkModule([], False), parent=None, module_name=module_name)
    scope.parts = parts
    scope.assigns, scope.defs = ChunkedNames(parts, True), ChunkedNames(parts, False)
    exits_before, seen_exit = [], False
    i = merges = 0
    while i < len(parts.rows):
        try:
            statements = parts.parse(i)
        except SyntaxError:
            if i + 1 >= len(parts.rows) or merges == _MERGES:
                raise NotChunkable("a part does not parse") from None
            _merged(parts, i)
            merges += 1
            continue
        except (RecursionError, MemoryError, ValueError) as exc:
            raise NotChunkable("a part does not parse") from exc
        parts.current = i
        scopes.bind(scope, statements)
        exits_before.append(seen_exit)
        seen_exit = seen_exit or any(isinstance(s, ast.If) and s.body and isinstance(s.body[-1], (ast.Return, ast.Raise, ast.Continue)) for s in statements)
        i, merges = i + 1, 0
    if len(parts.rows) < 2:
        raise NotChunkable("one part")
    return scope, exits_before


def plan(text: str, filename: str, line_starts: list[int], part_lines: int) -> _Parts:
    rows, offsets = split(text, line_starts, part_lines)
    return _Parts(text, filename, rows, offsets)
