"""What a scope (module, class, function) binds: imports, assignments, parameters.

Built lazily, one shallow pass per scope (nested functions and classes are their
own scopes). The analysis is flow-insensitive on purpose: a name's value is the
set of everything assigned to it in its scope, which is what a reader sees when
asking "where does `device` come from?".
"""

from __future__ import annotations

import ast
import builtins
import functools
from dataclasses import dataclass, field

from devlint.static import launchers
from devlint.static import walk

_SCOPE_TYPES = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef})


@dataclass
class Scope:
    node: ast.AST
    parent: Scope | None
    module_name: str = ""
    package: bool = False  # the module is a package's `__init__`: `from .x` is a module inside it
    imports: dict[str, str] = field(default_factory=dict)
    assigns: dict[str, list[ast.expr]] = field(default_factory=dict)
    params: dict[str, ast.arg] = field(default_factory=dict)
    defs: dict[str, ast.AST] = field(default_factory=dict)  # functions and classes defined here
    defaults: dict[str, ast.expr] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)  # modules of `from m import *`
    # Loop and comprehension targets that count 0, 1, 2, ... (`for i in range(n)`, the index
    # of `enumerate(xs)`): one entry per binding, True when that binding counts from 0.
    counters: dict[str, list[bool]] = field(default_factory=dict)
    # Lines where this scope's own code selects the device: torch.cuda.set_device(i),
    # torch.cuda.device(i), a CUDA_VISIBLE_DEVICES assignment, or a launcher start that
    # selects each process's GPU (static/launchers.py)
    device_selected_at: list[int] = field(default_factory=list)
    # Lines where it sets CUDA_VISIBLE_DEVICES: after them "cuda:0" is the first GPU it names
    visible_devices_set_at: list[int] = field(default_factory=list)
    _children: dict[int, Scope] = field(default_factory=dict, repr=False)
    _attribute_uses: set[tuple[str, str]] | None = field(default=None, repr=False)

    _self_attrs: dict[str, list[tuple[ast.AST, ast.expr]]] | None = field(default=None, repr=False)
    # `function`, once asked: every check asks it of every node it looks at
    _function: object = field(default=None, repr=False, compare=False)

    @property
    def self_attrs(self) -> dict[str, list[tuple[ast.AST, ast.expr]]]:
        """`self.<attr> = value` across a class's methods, as (method, value): class scopes only."""
        if self._self_attrs is None:
            self._self_attrs = {}
            if isinstance(self.node, ast.ClassDef):
                for method in self.node.body:
                    if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        for child in _shallow(method.body):
                            if isinstance(child, (ast.Assign, ast.AnnAssign)) and child.value is not None:
                                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                                for t in targets:
                                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                                        self._self_attrs.setdefault(t.attr, []).append((method, child.value))
        return self._self_attrs

    @property
    def body(self) -> list[ast.AST]:
        body = self.node.body
        return body if isinstance(body, list) else [body]

    @property
    def attribute_uses(self) -> set[tuple[str, str]]:
        """(name, attr) for every `name.attr` in this scope's own code (computed once)."""
        if self._attribute_uses is None:
            self._attribute_uses = {
                (n.value.id, n.attr)
                for n in _shallow(self.body)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            }
        return self._attribute_uses

    def names_assigned(self, test) -> list[str]:
        """The names this scope assigns a value `test` accepts, in the order they are first bound."""
        return [name for name, values in self.assigns.items() if any(test(v) for v in values)]

    def child(self, node: ast.AST) -> Scope:
        """The scope of a function, lambda or class defined directly in this one (cached)."""
        scope = self._children.get(id(node))
        if scope is None:
            scope = self._children[id(node)] = build_scope(node, self, self.module_name, self.package)
        return scope

    @property
    def kind(self) -> str:
        if isinstance(self.node, ast.Module):
            return "module"
        if isinstance(self.node, ast.ClassDef):
            return "class"
        return "function"

    @property
    def function(self) -> Scope | None:
        """The innermost enclosing function scope (itself if it is one)."""
        found = self._function
        if found is None:
            scope: Scope | None = self
            while scope is not None and scope.kind != "function":
                scope = scope.parent
            found = self._function = (scope,)
        return found[0]

    @property
    def enclosing_class(self) -> Scope | None:
        """The class a method belongs to (only for a function directly in a class)."""
        if self.kind == "function" and self.parent is not None and self.parent.kind == "class":
            return self.parent
        return None

    def resolve(self, name: str) -> str | None:
        """The qualified name a bare name refers to: an import, a def of this module, or a
        name no code of the module binds that its one star import (`from pkg.utils import *`)
        brings in."""
        scope: Scope | None = self
        module = self
        while scope is not None:
            if name in scope.imports:
                return scope.imports[name]
            if name in scope.defs and scope.kind == "module":
                return f"{scope.module_name}.{name}" if scope.module_name else name
            if name in scope.assigns or name in scope.params or name in scope.defs:
                return None  # shadowed by a local binding
            module = scope
            scope = scope.parent
            while scope is not None and scope.kind == "class":  # class bodies don't enclose methods
                scope = scope.parent
        # `torch` reached through a star import (`from .detect import *`) is still torch.
        if name == "torch":
            return "torch"
        if len(module.star_imports) == 1 and not hasattr(builtins, name):
            return f"{module.star_imports[0]}.{name}"
        return None

    def lookup_values(self, name: str) -> tuple[Scope, list[ast.expr]] | None:
        """The scope that binds `name` by assignment, and the values assigned."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.params and name not in scope.assigns:
                return None
            if name in scope.assigns:
                return scope, scope.assigns[name]
            if name in scope.imports or name in scope.defs:
                return None
            scope = scope.parent
            while scope is not None and scope.kind == "class":
                scope = scope.parent
        return None


def _absolute(module_name: str, level: int, target: str | None, package: bool = False) -> str:
    """The module a relative import names: one level up is the module's package, which for
    a package's `__init__` is the package itself."""
    if level == 0:
        return target or ""
    parts = module_name.split(".") if module_name else []
    base = parts[: max(len(parts) - level + package, 0)]
    if target:
        base.append(target)
    return ".".join(base)


def _record_import(scope: Scope, node: ast.Import | ast.ImportFrom) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                scope.imports[alias.asname] = alias.name
            else:
                head = alias.name.split(".")[0]
                scope.imports[head] = head
        return
    module = _absolute(scope.module_name, node.level, node.module, scope.package)
    for alias in node.names:
        if alias.name == "*":
            if module:
                scope.star_imports.append(module)
            continue
        local = alias.asname or alias.name
        scope.imports[local] = f"{module}.{alias.name}" if module else alias.name


def _targets(target: ast.expr):
    if isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _targets(elt)
    elif isinstance(target, ast.Starred):
        yield from _targets(target.value)
    else:
        yield target


def _paired(target: ast.expr, value: ast.expr):
    """(name, value) for each name an assignment binds: `a, b = x, y` binds `a` to `x` and
    `b` to `y`; what an unpacking of anything else binds is unknown."""
    if not isinstance(target, (ast.Tuple, ast.List)):
        yield target, value
        return
    values = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
    if values is None or len(values) != len(target.elts) or any(isinstance(e, ast.Starred) for e in (*target.elts, *values)):
        for t in _targets(target):
            yield t, _UNKNOWN
        return
    for t, v in zip(target.elts, values):
        yield from _paired(t, v)


def _shallow(body) -> list[ast.AST]:
    """The statements and expressions of one scope, in source order; nested scopes are
    included, not entered. A list built in one loop (walk.children inlined): building
    every function's scope walks the whole file once more, a fifth of a cold run."""
    out: list[ast.AST] = []
    fields_of = walk.FIELDS
    node_class = ast.AST
    scope_types = _SCOPE_TYPES
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        out.append(node)
        node_type = type(node)
        if node_type in scope_types:
            continue
        names = fields_of.get(node_type)
        if names is None:
            names = walk.fields(node_type)
        below = []
        for name in names:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, node_class):
                        below.append(item)
            elif isinstance(value, node_class):
                below.append(value)
        if below:
            below.reverse()
            stack.extend(below)
    return out


def _binders(body) -> list[ast.AST]:
    """The nodes of _shallow(body) whose type is in _BINDERS, in the same order, without
    listing the rest or entering nodes that hold no syntax below them (names, constants,
    operators): what build_scope reads, for every scope of a file."""
    out: list[ast.AST] = []
    fields_of = walk.FIELDS
    node_class = ast.AST
    scope_types = _SCOPE_TYPES
    binders = _BINDERS
    leaves = _LEAVES
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        node_type = type(node)
        if node_type in binders:
            out.append(node)
        if node_type in scope_types:
            continue
        names = fields_of.get(node_type)
        if names is None:
            names = walk.fields(node_type)
        below = []
        for name in names:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, node_class) and type(item) not in leaves:
                        below.append(item)
            elif isinstance(value, node_class) and type(value) not in leaves:
                below.append(value)
        if below:
            below.reverse()
            stack.extend(below)
    return out


def _sets_visible_devices(target: ast.expr) -> bool:
    """`os.environ["CUDA_VISIBLE_DEVICES"] = ...`: "cuda" then means the GPU it names."""
    return (
        isinstance(target, ast.Subscript)
        and isinstance(target.value, ast.Attribute)
        and target.value.attr == "environ"
        and isinstance(target.slice, ast.Constant)
        and target.slice.value == "CUDA_VISIBLE_DEVICES"
    )


def _is_device_selection(call: ast.Call, scope: Scope) -> bool:
    """torch.cuda.set_device(i) or torch.cuda.device(i) with an index other than literal 0."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("set_device", "device")):
        return False
    owner = func.value
    if not (isinstance(owner, ast.Attribute) and owner.attr == "cuda") and not (
        isinstance(owner, ast.Name) and scope.resolve(owner.id) in ("torch.cuda",)
    ):
        return False
    if not call.args:
        return False
    arg = call.args[0]
    return not (isinstance(arg, ast.Constant) and arg.value in (0, "cuda:0")) and not _unindexed(arg, scope)


def _unindexed(expr: ast.expr, scope: Scope, depth: int = 0) -> bool:
    """`"cuda"`, `"cuda" if ok else "cpu"`, or a name only ever assigned such a value
    (CogVLM's `with torch.cuda.device(DEVICE)`): selecting it selects the current device,
    which is no choice."""
    if isinstance(expr, ast.Constant):
        return expr.value in ("cuda", "cpu")
    if isinstance(expr, ast.IfExp):
        return _unindexed(expr.body, scope, depth) and _unindexed(expr.orelse, scope, depth)
    if isinstance(expr, ast.Name) and depth < 2:
        values = scope.assigns.get(expr.id)
        return bool(values) and all(_unindexed(v, scope, depth + 1) for v in values)
    return False


@functools.cache
def _launcher_names() -> frozenset[str]:
    return frozenset(name.rsplit(".", 1)[-1] for name in launchers.selecting_calls()) | launchers.LAUNCH_METHODS



def _starts_launcher(call: ast.Call, scope: Scope) -> bool:
    """`Accelerator()`, `deepspeed.initialize(...)`, `fabric.launch()`: from here on the
    current device is the process's own (static/launchers.py)."""
    func = call.func
    last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return last in _launcher_names() and launchers.selects_device(call, lambda expr: _resolved(expr, scope))


def _resolved(expr: ast.expr, scope: Scope) -> str | None:
    """The qualified name of a dotted expression, through this scope's imports."""
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    head = scope.resolve(expr.id)
    return ".".join([head, *reversed(parts)]) if head else None


def _counter(target: ast.expr, iterable: ast.expr) -> ast.Name | None:
    """The target that counts from 0: `i` of `for i in range(n)` / `range(0, n)` / `enumerate(xs)`."""
    if not isinstance(iterable, ast.Call) or not isinstance(iterable.func, ast.Name) or iterable.keywords:
        return None
    args = iterable.args
    if iterable.func.id == "range" and isinstance(target, ast.Name):
        zero = len(args) == 1 or (len(args) >= 2 and isinstance(args[0], ast.Constant) and args[0].value == 0)
        return target if zero and args else None
    if iterable.func.id == "enumerate" and len(args) == 1 and isinstance(target, ast.Tuple) and target.elts:
        first = target.elts[0]
        return first if isinstance(first, ast.Name) else None
    return None


def build_scope(node: ast.AST, parent: Scope | None, module_name: str, package: bool = False) -> Scope:
    scope = Scope(node=node, parent=parent, module_name=module_name, package=package)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        positional = args.posonlyargs + args.args
        for arg, default in zip(reversed(positional), reversed(args.defaults)):
            scope.defaults[arg.arg] = default
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            if default is not None:
                scope.defaults[arg.arg] = default
        for arg in positional + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]:
            scope.params[arg.arg] = arg
    bind(scope, scope.body)
    return scope


def bind(scope: Scope, body: list[ast.AST]) -> None:
    """Record what the statements of `body` bind in `scope`, in source order: build_scope's
    loop, which a module checked in parts (static/parts.py) runs once per part."""
    # _binders gives nodes of the types in _BINDERS exactly: calls and assignments, the most
    # of them by far, are told by their type first (a third of a module of assignments).
    launcher_names = _launcher_names()
    assigns = scope.assigns
    for child in _binders(body):
        kind = type(child)
        if kind is ast.Call:
            func = child.func
            last = func.attr if type(func) is ast.Attribute else getattr(func, "id", None)
            if last in _SELECTING_NAMES and _is_device_selection(child, scope):
                scope.device_selected_at.append(child.lineno)
            elif last in launcher_names and _starts_launcher(child, scope):
                scope.device_selected_at.append(child.lineno)
        elif kind is ast.Assign:
            targets = child.targets
            if any(type(t) is ast.Subscript and _sets_visible_devices(t) for t in targets):
                scope.device_selected_at.append(child.lineno)
                scope.visible_devices_set_at.append(child.lineno)
            for target in targets:
                if type(target) is ast.Name:
                    assigns.setdefault(target.id, []).append(child.value)
                    continue
                for t, value in _paired(target, child.value):
                    if isinstance(t, ast.Name):
                        assigns.setdefault(t.id, []).append(value)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            _record_import(scope, child)
        elif isinstance(child, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            target = child.target
            if isinstance(target, ast.Name) and child.value is not None:
                value = child.value if not isinstance(child, ast.AugAssign) else _UNKNOWN
                scope.assigns.setdefault(target.id, []).append(value)
        elif isinstance(child, (ast.For, ast.AsyncFor, ast.comprehension)):
            counter = _counter(child.target, child.iter)
            for t in _targets(child.target):
                if isinstance(t, ast.Name):
                    scope.assigns.setdefault(t.id, []).append(_UNKNOWN)
                    scope.counters.setdefault(t.id, []).append(t is counter)
        elif isinstance(child, ast.withitem) and child.optional_vars is not None:
            for t in _targets(child.optional_vars):
                if isinstance(t, ast.Name):
                    scope.assigns.setdefault(t.id, []).append(_UNKNOWN)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope.defs[child.name] = child


# The callee names _is_device_selection can accept.
_SELECTING_NAMES = frozenset({"set_device", "device"})


# Node types that bind names or select a device: the only ones build_scope looks at.
_BINDERS = frozenset(
    {
        ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr,
        ast.For, ast.AsyncFor, ast.comprehension, ast.withitem,
        ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Call,
    }
)

# Node types with no syntax below them and no binding: _binders does not enter them.
_LEAVES = frozenset(
    {ast.Name, ast.Constant}
    | {t for base in (ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context) for t in base.__subclasses__()}
)

# Stands for a value devlint does not follow (loop targets, tuple unpacking, augmented assignment).
_UNKNOWN = ast.Constant(value=Ellipsis)
UNKNOWN = _UNKNOWN
