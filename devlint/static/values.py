"""Device values: which device an expression denotes, by abstract interpretation.

Every rule that asks "is this the current device, or GPU0?" asks here, whatever shape the
program built the value in. A value is one point of a small lattice:

- `cpu` (also meta, mps, xla...: not a CUDA device),
- `current`: `"cuda"` without an index, the current device (GPU0 unless set_device chose),
- `gpu k`: a literal index (`"cuda:0"`, `torch.device("cuda", 1)`, `.to(0)`),
- `given`: chosen by the caller (a parameter, an option, a rank, a tensor's device),
- `all`: every visible GPU counted from 0 (`f"cuda:{i}" for i in range(n)`), GPU0 included,
- `unknown`.

Strings are followed as sets of possible texts, with holes for the parts the source does
not spell (a loop counter from 0, a parameter, anything else), through `+`, `%`,
`.format`, f-strings, `str()`, conditionals and `or`; names through their assignments
(flow-insensitive per scope, scope.py), `self.<attr>` through the class's methods,
containers through constant subscripts, and calls of the module's own functions through
their returns, with the call's arguments bound to the parameters (bounded depth). When
several values are possible the worst wins (`"cuda" if ok else "cpu"` is `current`): the
line that can leak is the one to show. Each result is memoised per node and scope, so a
file costs one evaluation per expression however many rules ask.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from enum import IntEnum
from itertools import product

from devlint.static.names import qualname
from devlint.static.scope import UNKNOWN as _UNBOUND
from devlint.static.scope import Scope, _shallow

_NON_CUDA = frozenset({"cpu", "meta", "mps", "xla", "xpu", "hpu", "mtia", "npu", "lazy", "privateuseone"})
_MAX_DEPTH = 8  # names, attributes and calls followed from one expression
_MAX_TEXTS = 16  # possible texts of one string expression kept before giving up
# Holes in a text: the parts the source does not spell.
COUNTER, GIVEN_HOLE, UNKNOWN_HOLE = "\x00", "\x01", "\x02"
_HOLES = COUNTER + GIVEN_HOLE + UNKNOWN_HOLE
_PERCENT = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?[sdirf]")
_BRACES = re.compile(r"\{[^{}]*\}")


class Kind(IntEnum):
    """The lattice's points, ordered by how bad they are where a device is used."""

    UNKNOWN = 0
    CPU = 1
    GIVEN = 2
    GPU = 3  # a literal index: `index` says which
    ALL = 4
    CURRENT = 5


@dataclass(frozen=True)
class Value:
    kind: Kind
    node: ast.AST | None = None  # the literal or expression that decides the value
    index: int | None = None  # for Kind.GPU
    # Decided by a literal inside a called helper, whatever the call passes: that literal is
    # judged where it is written, not at each use of the helper's result.
    in_callee: bool = False

    @property
    def current(self) -> bool:
        """The current device: GPU0 unless the program selected another."""
        return self.kind is Kind.CURRENT

    @property
    def gpu0(self) -> bool:
        """GPU0 pinned: written out, or reached by counting every GPU from 0."""
        return (self.kind is Kind.GPU and self.index == 0) or self.kind is Kind.ALL

    @property
    def severity(self) -> int:
        if self.kind is Kind.GPU:
            return 4 if self.index == 0 else 2
        return {Kind.UNKNOWN: 0, Kind.CPU: 1, Kind.GIVEN: 2, Kind.ALL: 4, Kind.CURRENT: 5}[self.kind]


UNKNOWN = Value(Kind.UNKNOWN)


def join(values) -> Value:
    """The worst of several possible values (the first of equals)."""
    worst = UNKNOWN
    for value in values:
        if value.severity > worst.severity:
            worst = value
    return worst


def of_text(text: str, node: ast.AST | None = None) -> Value:
    """The value a device string denotes (holes: see the module's docstring)."""
    text = text.strip()
    if text == "cuda":
        return Value(Kind.CURRENT, node)
    head, colon, index = text.partition(":")
    if head == "cuda" and colon:
        if index.isdigit():
            return Value(Kind.GPU, node, int(index))
        if index == COUNTER:
            return Value(Kind.ALL, node)
        return Value(Kind.GIVEN, node)
    if head in _NON_CUDA:
        return Value(Kind.CPU, node)
    return UNKNOWN


class _Env:
    """Parameters bound by the call being followed: name -> (argument, the caller's scope, env)."""

    def __init__(self, function: Scope, bound: dict[str, tuple[ast.expr, Scope, _Env | None]]):
        self.function = function
        self.bound = bound


def evaluate(expr: ast.expr | None, scope: Scope, ints_are_devices: bool = True, project=None) -> Value:
    """The device `expr` denotes when used where a device is expected (ints are devices in
    `.to(0)`, not in `x = 0` unless the name says so). `project` (the ProjectIndex) answers
    for helpers of other modules: `project.returned_device(qualname)`."""
    if expr is None:
        return UNKNOWN
    memo = _memo(scope)
    key = (id(expr), id(scope), ints_are_devices, project)  # the index itself: each stage has its own
    if key not in memo:
        memo[key] = _Evaluator(project).value(expr, scope, None, 0, ints_are_devices)
    return memo[key]


def returned_when_omitted(function: ast.FunctionDef | ast.AsyncFunctionDef, module: Scope) -> Value:
    """What a call of a module-level function that passes no argument gets back, when that
    differs from what any caller passing arguments gets (`get_device()` without its index):
    a summary other modules' calls are judged by. UNKNOWN otherwise."""
    inner = module.child(function)
    returns = [n.value for n in return_statements(function) if n.value is not None]
    if not returns or not inner.params:
        return UNKNOWN
    evaluator = _Evaluator()
    omitted = join(evaluator.value(r, inner, _Env(inner, {}), 1, True) for r in returns)
    if not (omitted.current or omitted.gpu0):
        return UNKNOWN
    passed = join(evaluator.value(r, inner, None, 1, True) for r in returns)
    return UNKNOWN if passed.severity >= omitted.severity else omitted


def texts(expr: ast.expr, scope: Scope) -> set[str] | None:
    """The texts a string expression can have (holes: COUNTER, GIVEN_HOLE, UNKNOWN_HOLE), or
    None when it is not one the engine can follow."""
    found = _Evaluator().texts(expr, scope, None, 0)
    return None if found is None else set(found)


def spelled_out(text: str) -> bool:
    """Is every part of the text written in the source (no hole)?"""
    return not any(hole in text for hole in _HOLES)


def containers(expr: ast.expr, scope: Scope) -> list[tuple[ast.expr, Scope]]:
    """The literal lists, tuples and dicts `expr` can be: written there, assigned to the name
    or to `self.<attr>`, or returned by one of the module's own functions."""
    return [(c, s) for c, s, _ in _Evaluator()._containers(expr, scope, None, 0)]


def when_omitted(expr: ast.expr, scope: Scope) -> Value:
    """The device `expr` denotes in a call that passes no argument: every parameter of the
    enclosing function keeps its default (`device=None` turned into `"cuda"`)."""
    function = scope.function
    if function is None:
        return evaluate(expr, scope)
    memo = _memo(scope)
    key = (id(expr), id(scope), "omitted")
    if key not in memo:
        memo[key] = _Evaluator().value(expr, scope, _Env(function, {}), 0, True)
    return memo[key]


# Stands for an argument the caller passed, of a value the source does not say.
PASSED = ast.Name(id="<passed>", ctx=ast.Load())


def with_argument(expr: ast.expr, scope: Scope, param: str, argument, **others) -> Value:
    """The device `expr` (in function `scope`) denotes when `param` (and each of `others`)
    holds its argument: a constant's value (its default: None, "") or PASSED (whatever a
    caller passes)."""
    bound = {name: (PASSED if held is PASSED else ast.Constant(value=held), scope, None) for name, held in {param: argument, **others}.items()}
    return _Evaluator().value(expr, scope, _Env(scope, bound), 0, True)


def _memo(scope: Scope) -> dict:
    root = scope
    while root.parent is not None:
        root = root.parent
    memo = root.__dict__.get("_device_values")
    if memo is None:
        memo = root.__dict__["_device_values"] = {}
    return memo


class _Evaluator:
    def __init__(self, project=None):
        self.project = project

    def value(self, expr: ast.expr, scope: Scope, env: _Env | None, depth: int, ints: bool) -> Value:
        if depth > _MAX_DEPTH or expr is _UNBOUND:
            return UNKNOWN
        if expr is PASSED:
            return Value(Kind.GIVEN)
        if isinstance(expr, ast.Constant):
            if isinstance(expr.value, str):
                return of_text(expr.value, expr)
            if ints and isinstance(expr.value, int) and not isinstance(expr.value, bool):
                return Value(Kind.GPU, expr, expr.value)
            return UNKNOWN
        if isinstance(expr, ast.IfExp):
            return join(self.value(e, scope, env, depth + 1, ints) for e in self._branches(expr, scope, env))
        if isinstance(expr, ast.BoolOp):
            return join(self.value(e, scope, env, depth + 1, ints) for e in expr.values)
        if isinstance(expr, ast.Name):
            return self._name(expr, scope, env, depth, ints)
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id == "self":
                return self._self_attr(expr, scope, depth, ints)
            if expr.attr == "device":
                return Value(Kind.GIVEN, expr)  # x.device: follows a tensor
            return UNKNOWN
        if isinstance(expr, ast.Subscript):
            return join(self.value(e, s, en, depth + 1, ints) for e, s, en in self._elements(expr, scope, env, depth))
        if isinstance(expr, ast.Call):
            name = qualname(expr.func, scope)
            if name == "torch.device":
                return self._torch_device(expr, scope, env, depth)
            if name in ("torch.cuda.current_device", "torch.accelerator.current_device_index"):
                return Value(Kind.GIVEN, expr)
            returned = self._returned(expr, scope, env, depth, ints)
            if returned is not None:
                return returned
            if self.project is not None and name and not expr.args and not expr.keywords:
                summary = self.project.returned_device(name)
                if summary is not None:
                    return Value(Kind[summary[0]], expr, summary[1])
        texts = self.texts(expr, scope, env, depth)
        if texts is None:
            return UNKNOWN
        return join(of_text(text, node) for text, node in texts.items())

    # --- conditions on parameters ----------------------------------------------

    def _branches(self, expr: ast.IfExp, scope: Scope, env: _Env | None) -> tuple[ast.expr, ...]:
        """The branches a conditional can take. A test on a parameter is decided: by the
        argument of the call being followed, else as if the caller passed one (a value that
        only a caller omitting it gets is that call's leak, judged there)."""
        truth = self._truth(expr.test, scope, env)
        if truth is None:
            return (expr.body, expr.orelse)
        return (expr.body,) if truth else (expr.orelse,)

    def _truth(self, test: ast.expr, scope: Scope, env: _Env | None) -> bool | None:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self._truth(test.operand, scope, env)
            return None if inner is None else not inner
        if isinstance(test, ast.Name):
            held = self._held(test.id, scope, env)
            return None if held is None else bool(held[0])
        if (
            isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name)
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None
            and isinstance(test.ops[0], (ast.Is, ast.IsNot, ast.Eq, ast.NotEq))
        ):
            held = self._held(test.left.id, scope, env)
            if held is None:
                return None
            is_none = held[1]
            return is_none if isinstance(test.ops[0], (ast.Is, ast.Eq)) else not is_none
        return None

    def _held(self, name: str, scope: Scope, env: _Env | None, depth: int = 0) -> tuple[bool, bool] | None:
        """(truthy, is None) of a parameter: its bound argument when it is a constant, or a
        caller's choice (truthy, not None); None when the source does not say."""
        bound = self._binding(name, scope, env)
        if bound is not None:
            arg, caller, caller_env = bound
            if arg is PASSED:
                return True, False
            if isinstance(arg, ast.Constant):
                return bool(arg.value), arg.value is None
            if isinstance(arg, ast.Name) and depth < _MAX_DEPTH:
                return self._held(arg.id, caller, caller_env, depth + 1)
            return True, False  # an expression the caller computed: passed, not None
        if _is_param(name, scope) and name not in scope.assigns and not _is_flag(name, scope):
            return True, False
        return None

    # --- names, attributes, containers, calls -----------------------------------

    def _name(self, expr: ast.Name, scope: Scope, env: _Env | None, depth: int, ints: bool) -> Value:
        bound = self._binding(expr.id, scope, env)
        if bound is not None:
            arg, caller, caller_env = bound
            return self.value(arg, caller, caller_env, depth + 1, ints)
        found = scope.lookup_values(expr.id)
        if found is None:
            return Value(Kind.GIVEN, expr) if _is_param(expr.id, scope) else UNKNOWN
        owner, values = found
        ints = names_a_device(expr.id)  # plain ints assigned to a name are devices only when it says so
        return join(self.value(v, owner, env if owner is scope else None, depth + 1, ints) for v in self._live(values, owner, env))

    def _live(self, assigned: list[ast.expr], owner: Scope, env: _Env | None) -> list[ast.expr]:
        """The values assigned to a local that can reach a use, in the call being followed:
        `suffix = ""` under `if gpu_id is None:` is dead when the call passes `gpu_id`."""
        if env is None or owner is not env.function:
            return assigned
        tests = _branch_tests(owner)
        return [
            v for v in assigned
            if all(self._truth(test, owner, env) in (None, taken) for test, taken in tests.get(id(v), ()))
        ]

    def _binding(self, name: str, scope: Scope, env: _Env | None):
        """The argument a followed call passed for parameter `name` (or its default)."""
        if env is None or scope is not env.function or name not in scope.params or name in scope.assigns:
            return None
        if name in env.bound:
            return env.bound[name]
        default = scope.defaults.get(name)
        return (default, scope.parent, None) if default is not None else None

    def _self_attr(self, expr: ast.Attribute, scope: Scope, depth: int, ints: bool) -> Value:
        function = scope.function
        cls = function.enclosing_class if function else None
        if cls is None:
            return UNKNOWN
        ints = names_a_device(expr.attr)
        return join(self.value(v, cls.child(method), None, depth + 1, ints) for method, v in cls.self_attrs.get(expr.attr, []))

    def _elements(self, expr: ast.Subscript, scope: Scope, env: _Env | None, depth: int):
        """The elements `container[key]` can be, for a constant key of a literal container
        (a list, tuple or dict, written there or assigned to the name)."""
        key = expr.slice
        if not isinstance(key, ast.Constant) or depth > _MAX_DEPTH:
            return
        for container, owner, owner_env in self._containers(expr.value, scope, env, depth):
            if isinstance(container, (ast.List, ast.Tuple)) and isinstance(key.value, int):
                if -len(container.elts) <= key.value < len(container.elts):
                    yield container.elts[key.value], owner, owner_env
            elif isinstance(container, ast.Dict):
                for k, v in zip(container.keys, container.values):
                    if isinstance(k, ast.Constant) and k.value == key.value:
                        yield v, owner, owner_env

    def _containers(self, expr: ast.expr, scope: Scope, env: _Env | None, depth: int):
        if isinstance(expr, (ast.List, ast.Tuple, ast.Dict)):
            yield expr, scope, env
        elif isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self" and depth <= _MAX_DEPTH:
            function = scope.function
            cls = function.enclosing_class if function else None
            for method, v in cls.self_attrs.get(expr.attr, []) if cls is not None else ():
                yield from self._containers(v, cls.child(method), None, depth + 1)
        elif isinstance(expr, ast.Call) and depth + 2 <= _MAX_DEPTH:
            callee = module_function(expr.func, scope)
            if callee is not None:
                inner = scope_of(callee, scope)
                for r in return_statements(callee):
                    if r.value is not None:
                        yield from self._containers(r.value, inner, None, depth + 1)
        elif isinstance(expr, ast.Name) and depth <= _MAX_DEPTH:
            bound = self._binding(expr.id, scope, env)
            if bound is not None:
                yield from self._containers(bound[0], bound[1], bound[2], depth + 1)
                return
            found = scope.lookup_values(expr.id)
            if found is not None:
                owner, values = found
                for v in values:
                    yield from self._containers(v, owner, env if owner is scope else None, depth + 1)

    def _returned(self, call: ast.Call, scope: Scope, env: _Env | None, depth: int, ints: bool) -> Value | None:
        """What a call of one of the module's own functions returns, its parameters bound
        to the call's arguments (those omitted take their defaults)."""
        callee = module_function(call.func, scope)
        if callee is None or depth + 2 > _MAX_DEPTH:
            return None
        inner = scope_of(callee, scope)
        bound = _bind(call, callee, scope, env)
        if bound is None:
            return None
        inner_env = _Env(inner, bound)
        returns = [n.value for n in return_statements(callee) if n.value is not None]
        if not returns:
            return None
        value = join(self.value(r, inner, inner_env, depth + 1, ints) for r in returns)
        if value.node is None or not _within(value.node, callee):
            return value  # decided by an argument of this call
        whatever_passed = join(self.value(r, inner, None, depth + 1, ints) for r in returns)
        if whatever_passed.severity >= value.severity:
            return replace(value, in_callee=True)  # the helper's own literal decides, whatever its callers pass
        return Value(value.kind, call, value.index)  # decided by what this call omits

    def _torch_device(self, call: ast.Call, scope: Scope, env: _Env | None, depth: int) -> Value:
        args = list(call.args)
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        type_arg = args[0] if args else kw.get("type")
        index_arg = args[1] if len(args) > 1 else kw.get("index")
        if type_arg is None:
            return UNKNOWN
        if index_arg is not None:
            base = self.value(type_arg, scope, env, depth + 1, False)
            if base.kind is Kind.CURRENT:
                index = self.value(index_arg, scope, env, depth + 1, True)
                if index.kind is Kind.GPU:
                    return Value(Kind.GPU, call, index.index)
                if counts_from_zero(index_arg, scope):
                    return Value(Kind.ALL, call)
                return Value(Kind.GIVEN, call)
            return Value(Kind.CPU, call) if base.kind is Kind.CPU else UNKNOWN
        if _modulo_gpu_count(type_arg) and counts_from_zero(type_arg, scope):
            return Value(Kind.ALL, call)  # torch.device(i % n_gpus) for i in range(n)
        inner = self.value(type_arg, scope, env, depth + 1, True)
        if inner.node is type_arg and (inner.current or inner.gpu0):
            return Value(inner.kind, call, inner.index)  # torch.device("cuda"): report the whole call
        return inner

    # --- strings ----------------------------------------------------------------

    def texts(self, expr: ast.expr, scope: Scope, env: _Env | None, depth: int) -> dict[str, ast.AST] | None:
        """The texts a string expression can have, each with the node that decides it; None
        when it is not one."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(expr, ast.Constant):
            return {expr.value: expr} if isinstance(expr.value, str) else None
        if isinstance(expr, ast.IfExp):
            return _union(self.texts(e, scope, env, depth + 1) for e in self._branches(expr, scope, env))
        if isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.Or):
            return _union(self.texts(e, scope, env, depth + 1) for e in expr.values)
        if isinstance(expr, ast.JoinedStr):
            parts = [
                {v.value: expr} if isinstance(v, ast.Constant) else self._hole(v.value, scope, env, depth)
                for v in expr.values
            ]
            return _concat(parts, expr)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            left = self.texts(expr.left, scope, env, depth + 1)
            right = self.texts(expr.right, scope, env, depth + 1)
            if left is None and right is None:
                return None
            return _concat([left or {UNKNOWN_HOLE: expr}, right or {UNKNOWN_HOLE: expr}], expr)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
            template = self.texts(expr.left, scope, env, depth + 1)
            if template is None:
                return None
            args = expr.right.elts if isinstance(expr.right, ast.Tuple) else [expr.right]
            return self._fill(template, _PERCENT, args, scope, env, depth, expr)
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr == "format":
                template = self.texts(func.value, scope, env, depth + 1)
                if template is None:
                    return None
                return self._fill(template, _BRACES, list(expr.args), scope, env, depth, expr)
            if isinstance(func, ast.Name) and func.id == "str" and len(expr.args) == 1 and scope.resolve("str") is None:
                return dict.fromkeys(self._hole(expr.args[0], scope, env, depth), expr)
        if isinstance(expr, ast.Name):
            named = self._name_texts(expr, scope, env, depth)
            if named is not None:
                return named
        if isinstance(expr, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)):
            value = self.value(expr, scope, env, depth + 1, False)
            if value.kind is Kind.UNKNOWN:
                return None
            return {_text_of(value): value.node or expr}
        return None

    def _name_texts(self, expr: ast.Name, scope: Scope, env: _Env | None, depth: int) -> dict[str, ast.AST] | None:
        """A name's texts: every string assigned to it (`suffix = ""` and `suffix = f":{i}"`)."""
        bound = self._binding(expr.id, scope, env)
        if bound is not None:
            return self.texts(bound[0], bound[1], bound[2], depth + 1)
        found = scope.lookup_values(expr.id)
        if found is None:
            return None
        owner, values = found
        return _union(self.texts(v, owner, env if owner is scope else None, depth + 1) for v in self._live(values, owner, env))

    def _hole(self, expr: ast.expr, scope: Scope, env: _Env | None, depth: int) -> dict[str, ast.AST]:
        """The texts a value formatted into a string can have."""
        if counts_from_zero(expr, scope):
            return {COUNTER: expr}
        if expr is _UNBOUND or depth > _MAX_DEPTH:
            return {UNKNOWN_HOLE: expr}
        if expr is PASSED:
            return {GIVEN_HOLE: expr}
        if isinstance(expr, ast.Constant) and not isinstance(expr.value, str):
            return {str(expr.value): expr}
        if isinstance(expr, ast.Name):
            bound = self._binding(expr.id, scope, env)
            if bound is not None:
                return self._hole(bound[0], bound[1], bound[2], depth + 1)
            found = scope.lookup_values(expr.id)
            if found is not None:
                owner, assigned = found
                held = _union(self._hole(v, owner, env if owner is scope else None, depth + 1) for v in self._live(assigned, owner, env))
                if held is not None:
                    return held
        texts = self.texts(expr, scope, env, depth + 1)
        if texts is not None:
            return texts
        given = isinstance(expr, ast.Name) and (_is_param(expr.id, scope) or self._binding(expr.id, scope, env) is not None)
        return {GIVEN_HOLE if given or isinstance(expr, ast.Attribute) else UNKNOWN_HOLE: expr}

    def _fill(self, template, placeholder, args, scope, env, depth, expr) -> dict[str, ast.AST]:
        """`template % args` / `template.format(*args)`, placeholders in order."""
        filled = [self._hole(a, scope, env, depth) for a in args]
        out: dict[str, ast.AST] = {}
        for text in template:
            pieces = placeholder.split(text)
            if len(pieces) - 1 != len(filled):
                out.setdefault(text if len(pieces) == 1 else UNKNOWN_HOLE, expr)
                continue
            parts: list[dict[str, ast.AST]] = []
            for piece, hole in zip(pieces, filled + [None]):
                parts.append({piece: expr})
                if hole is not None:
                    parts.append(hole)
            out.update(_concat(parts, expr) or {UNKNOWN_HOLE: expr})
        return out


def _branch_tests(function: Scope) -> dict[int, tuple[tuple[ast.expr, bool], ...]]:
    """For each value assigned in the function's own body under `if` statements, the tests
    above it and the branch it is in (True: the body). Computed once per function."""
    memo = _memo(function)
    key = ("branch tests", id(function.node))
    if key in memo:
        return memo[key]
    found: dict[int, tuple[tuple[ast.expr, bool], ...]] = {}

    def visit(statements: list[ast.stmt], above: tuple[tuple[ast.expr, bool], ...]) -> None:
        for statement in statements:
            if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None and above:
                found[id(statement.value)] = above
            elif isinstance(statement, ast.If):
                visit(statement.body, (*above, (statement.test, True)))
                visit(statement.orelse, (*above, (statement.test, False)))
            elif isinstance(statement, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(statement, block, []), above)
                for handler in getattr(statement, "handlers", []):
                    visit(handler.body, above)

    visit(function.body, ())
    memo[key] = found
    return found


def _within(node: ast.AST, outer: ast.AST) -> bool:
    """Is `node` written inside `outer` (by position)?"""
    start = (outer.lineno, outer.col_offset)
    end = (outer.end_lineno, outer.end_col_offset)
    return start <= (node.lineno, node.col_offset) and (node.end_lineno, node.end_col_offset) <= end


def _text_of(value: Value) -> str:
    if value.kind is Kind.CURRENT:
        return "cuda"
    if value.kind is Kind.GPU:
        return f"cuda:{value.index}"
    if value.kind is Kind.ALL:
        return "cuda:" + COUNTER
    if value.kind is Kind.CPU:
        return "cpu"
    return GIVEN_HOLE


def _union(parts) -> dict[str, ast.AST] | None:
    out: dict[str, ast.AST] = {}
    for part in parts:
        if part is None:
            return None
        for text, node in part.items():
            out.setdefault(text, node)
    return out if len(out) <= _MAX_TEXTS else None


def _concat(parts: list[dict[str, ast.AST]], expr: ast.AST) -> dict[str, ast.AST] | None:
    """Every text the parts joined in order can make; the whole expression decides each."""
    total = 1
    for part in parts:
        total *= len(part)
    if total > _MAX_TEXTS:
        return None
    return {"".join(combo): expr for combo in product(*parts)}


# --- the scope facts the evaluator reads --------------------------------------------


def _is_param(name: str, scope: Scope) -> bool:
    """Is `name` a parameter of the enclosing function (the caller chooses it)?"""
    current: Scope | None = scope
    while current is not None:
        if name in current.assigns or name in current.imports or name in current.defs:
            return False
        if name in current.params:
            return True
        current = current.parent
    return False


def _is_flag(name: str, scope: Scope) -> bool:
    """Is parameter `name` a flag (`cpu_only=False`)? Its callers pass either truth value (often
    a user's option), so a test on it decides nothing: both branches can run."""
    current: Scope | None = scope
    while current is not None and name not in current.params:
        current = current.parent
    default = current.defaults.get(name) if current is not None else None
    return isinstance(default, ast.Constant) and isinstance(default.value, bool)


def module_function(func: ast.expr, scope: Scope) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The module-level function a call names, when it is defined in this module."""
    if not isinstance(func, ast.Name):
        return None
    module = scope
    while module.parent is not None:
        module = module.parent
    found = module.defs.get(func.id)
    if not isinstance(found, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    return found if scope.resolve(func.id) is not None else None


def scope_of(function: ast.AST, scope: Scope) -> Scope:
    module = scope
    while module.parent is not None:
        module = module.parent
    return module.child(function)


def return_statements(function: ast.AST):
    """The function's own `return` statements (not those of functions nested in it)."""
    return [n for n in _shallow(function.body) if isinstance(n, ast.Return)]


def _bind(call: ast.Call, function: ast.AST, scope: Scope, env: _Env | None):
    """Parameter name -> (argument, caller's scope, caller's env); None for `*args` calls."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    args = function.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    bound = {}
    for name, arg in zip(positional, call.args):
        bound[name] = (arg, scope, env)
    for kw in call.keywords:
        bound[kw.arg] = (kw.value, scope, env)
    return bound


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

_DEVICE_NAME = re.compile(r"(^|_)(device|dev|gpu|gpu_id|device_id|cuda_device)(_|$)", re.I)


def names_a_device(name: str) -> bool:
    """`device`, `target_device`, `gpu_id`: names that hold a device choice."""
    return bool(_DEVICE_NAME.search(name))
