"""What a callable leaves the device at when a call omits it, read from its definition.

DL012 reports a call that omits a device parameter whose default lands on the current
device or on GPU0. The shapes a definition can have (each becomes a `Default`):

- `device='cuda'`, or `device=None` that the body turns into `'cuda'`: the current device;
- a GPU index defaulting to 0: `device_id=0`, `kwargs.get("device_id", 0)`, a dataclass
  field `device_id: int = 0`: GPU0;
- a helper that builds the device from a parameter with a falsy default, and returns the
  current device or GPU0 when it is left out: `get_device(gpu_id=None)` returning
  `torch.device('cuda' + suffix)`, or yolov5's `select_device(device='')`, which sets
  CUDA_VISIBLE_DEVICES from it and otherwise returns cuda:0 with every GPU visible;
- a function passing its own falsy default on to one of those (`_create(device=None)`
  calling `select_device(device)`): a `Forward`, resolved across the project by the index.

A default the callable never uses is no leak (SadTalker's Audio2Pose stores `device` and
passes it to a class that ignores it): `used` and `passes` let the index drop it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from devlint.findings import Library
from devlint.static import guards, values, walk
from devlint.static.values import names_a_device
from devlint.static.names import encloses
from devlint.static.names import qualname as qualname_of
from devlint.static.scope import Scope, _shallow
from devlint.static.suggest import INDEX_NAMES

CURRENT_DEVICE = "the current device, GPU0 unless set_device chose another"
# Parameters naming the GPU to use, whose default 0 is GPU0 (a rank is 0 on purpose outside a
# distributed job, so `local_rank=0` is left alone).
GPU_INDEX_NAMES = tuple(name for name in INDEX_NAMES if name != "local_rank")
GPU0 = "GPU0, whatever GPU the program was told to use"
_GIVEN = object()  # a value the caller passed: not None, not empty, not known


@dataclass(frozen=True)
class Default:
    qualname: str
    param: str
    position: int | None  # positional index at call sites (self excluded); None: keyword-only
    default: str  # how the default reads, e.g. "'cuda'" or "None -> 'cuda'"
    where: str  # "path:line" of the definition, or the library's name
    none_means_cuda: bool = False  # passing None says the same as leaving it out
    sentinel: str | None = None  # a string default the body resolves ("auto"): passing it says the same
    also: tuple[str, ...] = ()  # other parameters that also choose the device (gpu_id)
    means: str = CURRENT_DEVICE  # what the default amounts to
    returns: bool = False  # it returns the device: a call whose result is unused is harmless
    selects: bool = False  # given the parameter, it sets CUDA_VISIBLE_DEVICES for the code after it
    index: bool = False  # the parameter is a GPU index
    used: bool = True  # its own code uses the parameter (else it only passes it on)
    passes: tuple[tuple[str, int | None, str | None], ...] = ()  # (callee, position, keyword) it is passed to
    # A library callable that lands on the current device or GPU0 whatever device it is
    # given, and why (it calls another without passing the device on): no argument helps.
    ignores: str = ""
    library: Library | None = None  # the library version and source this was read from


def default_from_data(data: dict) -> Default:
    """A Default read back from JSON (the result cache, a library's cached summary): its
    lists made tuples again; which library it was read from is the reader's to say."""
    return Default(**{**data, "also": tuple(data["also"]), "passes": tuple(tuple(p) for p in data["passes"]), "library": None})


@dataclass(frozen=True)
class Forward:
    """`function(param=None)` passes `param` on to `callee`, unconditionally: if the callee
    relies on its own default for it, so does every call of `function` that omits it. With
    neither a position nor a keyword, the function calls the callee with no argument at all
    when `param` is unset (`if device is None: self.device = get_device()`): a device helper
    that falls back to the current device or GPU0 then decides for every call omitting it."""

    function: str
    param: str
    position: int | None
    default: str
    where: str
    callee: str
    callee_position: int | None
    callee_keyword: str | None
    also: tuple[str, ...] = ()  # other parameters the call runs without (`device is None`): passing one avoids it


@dataclass
class Found:
    defaults: list[Default]
    forwards: list[Forward]
    unused: list[tuple[str, str, int | None]]  # (function, parameter, position) never read


def _device_like(name: str) -> bool:
    return names_a_device(name) or name in INDEX_NAMES


def _falsy(default: ast.expr) -> bool:
    return isinstance(default, ast.Constant) and default.value in (None, "")


def position(scope: Scope, param: str) -> int | None:
    args = scope.node.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    if scope.parent is not None and scope.parent.kind == "class" and positional[:1] in (["self"], ["cls"]):
        positional = positional[1:]
    return positional.index(param) if param in positional else None


def _none_becomes(scope: Scope, param: str) -> tuple[values.Value, ast.expr] | None:
    """What `device=None` becomes in the body when the caller passes nothing, where that is
    the current device or GPU0, and the expression that makes it: assigned to the parameter
    or an attribute named for it, or to anything in the branch taken only when it is None
    (`if device is None: self.dev = torch.device("cuda" ...)`, so-vits-svc's encoders)."""
    for child in _assignments_to(scope, param) + _assignments_when_unset(scope, param):
        value = values.when_omitted(child.value, scope)
        if value.current or value.gpu0:
            return value, child.value
    return None


def _assignments_when_unset(scope: Scope, param: str) -> list[ast.Assign | ast.AnnAssign]:
    """The assignments of the function's own `if <param> is None:` branches (top level)."""
    found = []
    for statement in scope.node.body:
        if isinstance(statement, ast.If) and guards.says_unset(statement.test, param):
            found += [s for s in statement.body if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None]
    return found


def _assignments_to(scope: Scope, param: str, own: bool = False) -> list[ast.Assign | ast.AnnAssign]:
    """The function's assignments to `param`, or to an attribute named for it (`x.device`,
    `x._device`; with `own`, only the object's own: `self.device`)."""
    found = []
    for child in _shallow(scope.body):
        if isinstance(child, (ast.Assign, ast.AnnAssign)) and child.value is not None:
            targets = child.targets if isinstance(child, ast.Assign) else [child.target]
            if any(
                (isinstance(t, ast.Name) and t.id == param)
                or (isinstance(t, ast.Attribute) and t.attr in (param, f"_{param}") and (not own or _self_attribute(t)))
                for t in targets
            ):
                found.append(child)
    return found


def _none_means(scope: Scope, param: str, default: ast.expr, text) -> dict | None:
    """`device=None` turned into `"cuda"`, into `"cuda:0"` (laion_clap's `CLAP_Module(device=None)`),
    or into `f"cuda:{local_rank}"` with `local_rank=0`: a call that passes neither lands on the
    current device or GPU0 (whatever launcher runs it: the rank it was given never reaches the
    device)."""
    found = _none_becomes(scope, param)
    if found is None:
        return None
    value, expr = found
    if value.current:
        # `get_device(gpu_id) if device is None else device`: passing the index also avoids it
        also = tuple(sorted(
            n.id for n in ast.walk(expr)
            if isinstance(n, ast.Name) and n.id != param and n.id in scope.params and _device_like(n.id)
            and not values.with_argument(expr, scope, n.id, values.PASSED, **{param: None}).current
        ))
        return {"default": text(default) + " -> 'cuda'", "none_means_cuda": True, "also": also}
    others = sorted({n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and n.id != param and _is_zero(scope.defaults.get(n.id))})
    if not others:
        if value.gpu0 and value.node is not None:
            return {"default": f"{text(default)} -> {text(value.node)}", "none_means_cuda": True, "means": GPU0}
        return None
    return {
        "default": f"{text(default)} -> {text(value.node)} with {', '.join(f'{o}=0' for o in others)}",
        "none_means_cuda": True, "means": GPU0, "also": tuple(others),
    }


def _sentinel_means(scope: Scope, param: str, sentinel: str, text) -> dict | None:
    """`device="auto"` that the body resolves, under `if device == "auto":`, to `"cuda"`
    (MeloTTS's `TTS`): a call that omits it, or passes "auto", lands on the current device."""
    for child in _assignments_to(scope, param):
        if not guards.only_when_unset(guards.path_to(scope.node, child), param, sentinel):
            continue
        value = values.when_omitted(child.value, scope)
        if value.current or value.gpu0:
            return {
                "default": f"{text(scope.defaults[param])} -> {text(value.node) if value.node is not None else repr('cuda')}",
                "sentinel": sentinel, "means": CURRENT_DEVICE if value.current else GPU0,
            }
    return None


def may_default(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Can of_function find anything in this function: has its signature a device-like
    parameter, or `**kwargs` (read for `kwargs.get("device_id", 0)`)? Asked before its scope
    is built, which walks the body."""
    args = node.args
    if args.kwarg is not None:
        return True
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, *([args.vararg] if args.vararg else [])]
    return any(_device_like(a.arg) for a in every)


def of_function(scope: Scope, qualname: str, where: str, text) -> Found:
    """The defaults, forwards and unused device parameters of one function (`text(node)`
    gives a node's source)."""
    found = Found([], [], [])
    params = [p for p in scope.params if _device_like(p)]
    uses = _Uses(scope, set(params)) if params else None
    loaded = uses.read if uses else set()
    for param in params:
        default = scope.defaults.get(param)
        entry = _param_default(scope, param, default, text) if default is not None else None
        used, passes = uses.of(param) if param in loaded else (False, [])
        if not used and not passes:
            found.unused.append((qualname, param, position(scope, param)))
            continue
        if entry is not None:
            found.defaults.append(Default(
                qualname, param, position(scope, param), where=where, used=used,
                passes=tuple((c, p, k) for c, p, k, _, _ in passes), **entry,
            ))
        if entry is None and isinstance(default, ast.Constant) and default.value is None and param == "device":
            for callee in _fallback_helpers(scope, param):
                found.forwards.append(Forward(qualname, param, position(scope, param), "None", where, callee, None, None))
        if _falsy(default):
            for callee, callee_position, keyword, conditional, also in passes:
                if not conditional:
                    found.forwards.append(Forward(
                        qualname, param, position(scope, param), text(default), where, callee, callee_position, keyword, also,
                    ))
    kwarg = scope.node.args.kwarg
    if kwarg is not None:
        for key in _kwargs_index_defaults(scope, kwarg.arg):
            found.defaults.append(Default(qualname, key, None, "0", where, means=GPU0, index=True))
    return found


def _fallback_helpers(scope: Scope, param: str) -> list[str]:
    """Callables the function calls with no argument to make its device when `param` is
    None (`if device is None: self.device = get_device()`, `get_device() if device is None
    else device`), by qualified name."""
    found = []
    for child in _assignments_to(scope, param, own=True):
        value = child.value
        if isinstance(value, ast.IfExp) and guards.says_unset(value.test, param):
            value = value.body
        elif not guards.only_when_unset(guards.path_to(scope.node, child), param):
            continue
        if isinstance(value, ast.Call) and not value.args and not value.keywords:
            callee = qualname_of(value.func, scope)
            if callee is not None and not callee.startswith("torch"):
                found.append(callee)
    return found


def of_dataclass(node: ast.ClassDef, qualname: str, where: str) -> list[Default]:
    """`device_id: int = 0` fields of a dataclass: its constructor's GPU index defaults to 0."""
    if not any(_names_dataclass(d) for d in node.decorator_list):
        return []
    fields = [s for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    return [
        Default(qualname, field.target.id, i, "0", where, means=GPU0, index=True)
        for i, field in enumerate(fields)
        if field.target.id in GPU_INDEX_NAMES and _is_zero(field.value)
    ]


def _names_dataclass(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name == "dataclass"


def _is_zero(expr: ast.expr | None) -> bool:
    return isinstance(expr, ast.Constant) and type(expr.value) is int and expr.value == 0


def _param_default(scope: Scope, param: str, default: ast.expr, text) -> dict | None:
    """How a parameter's default leaks, as Default fields, or None."""
    if param == "device":
        device = values.evaluate(default, scope)
        written = device.node is not None and encloses(default, device.node)  # not a name the program chose
        none = isinstance(default, ast.Constant) and default.value is None
        if device.current and written:
            return {"default": text(default), "none_means_cuda": False}
        if device.gpu0 and written:
            return {"default": text(default), "none_means_cuda": False, "means": GPU0}
        if none:
            entry = _none_means(scope, param, default, text)
            if entry is not None:
                return entry
        if isinstance(default, ast.Constant) and isinstance(default.value, str) and default.value and device.kind is values.Kind.UNKNOWN:
            entry = _sentinel_means(scope, param, default.value, text)
            if entry is not None:
                return entry
    if param in GPU_INDEX_NAMES and _is_zero(default):
        return {"default": "0", "means": GPU0, "index": True}
    if _falsy(default):
        return _helper(scope, param, default, text)
    return None


def _kwargs_index_defaults(scope: Scope, kwargs: str) -> list[str]:
    """`kwargs.get("device_id", 0)` in the body: a GPU index parameter defaulting to 0."""
    keys = []
    for node in _shallow(scope.body):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == kwargs
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in GPU_INDEX_NAMES
            and _is_zero(node.args[1])
        ):
            keys.append(node.args[0].value)
    return keys


# --- helpers that build the device ---------------------------------------------------


def _helper(scope: Scope, param: str, default: ast.expr, text) -> dict | None:
    """A function that returns the current device or GPU0 when `param` keeps its falsy
    default, and another device when it is given."""
    source = text(scope.node)
    if "cuda" not in source and "CUDA_VISIBLE_DEVICES" not in source:
        return None  # nothing in it names a CUDA device
    unset = default.value
    returned = _returned(scope, param, unset)
    if not (returned.current or returned.gpu0):
        return None
    if _selects_visible_devices(scope, param, unset):
        return {
            "default": text(default), "returns": True, "selects": True, "index": param in INDEX_NAMES,
            "means": "cuda:0 with every GPU visible, GPU0",
        }
    chosen = _returned(scope, param, _GIVEN)
    if chosen.current or chosen.gpu0:
        return None  # a device chosen whatever the caller passes: reported where it is chosen
    means = CURRENT_DEVICE if returned.current else "GPU0"
    return {"default": text(default), "returns": True, "index": param in INDEX_NAMES, "means": means}


def _truth(test: ast.expr, param: str, value) -> bool | None:
    """The value of a test about `param` when it holds `value` (None when it depends on more)."""
    if isinstance(test, ast.Name) and test.id == param:
        return True if value is _GIVEN else bool(value)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _truth(test.operand, param, value)
        return None if inner is None else not inner
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name) and test.left.id == param:
        right = test.comparators[0]
        if isinstance(right, ast.Constant) and right.value is None and isinstance(test.ops[0], (ast.Is, ast.Eq, ast.IsNot, ast.NotEq)):
            none = value is not _GIVEN and value is None
            return none if isinstance(test.ops[0], (ast.Is, ast.Eq)) else not none
    if isinstance(test, ast.BoolOp):
        parts = [_truth(v, param, value) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in parts else (True if all(p is True for p in parts) else None)
        return True if True in parts else (False if all(p is False for p in parts) else None)
    return None


def _reachable(path: list[ast.AST], param: str, value) -> bool:
    """Can the end of `path` run when `param` holds `value`?"""
    for outer, inner in zip(path, path[1:]):
        if isinstance(outer, (ast.If, ast.IfExp)) and inner is not outer.test:
            truth = _truth(outer.test, param, value)
            in_body = any(node is inner for node in (outer.body if isinstance(outer, ast.If) else [outer.body]))
            if truth is not None and truth != in_body:
                return False
    return True


def _returned(scope: Scope, param: str, value) -> values.Value:
    """The worst device the function returns when `param` holds `value`."""
    worst = values.UNKNOWN
    for node in _shallow(scope.body):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        if not _reachable(guards.path_to(scope.node, node), param, value):
            continue
        device = values.with_argument(node.value, scope, param, values.PASSED if value is _GIVEN else value)
        worst = values.join((worst, device))
    return worst


def _selects_visible_devices(scope: Scope, param: str, unset) -> bool:
    """Does it set CUDA_VISIBLE_DEVICES from `param`, only when `param` is given?"""
    for node in _shallow(scope.body):
        if isinstance(node, ast.Assign) and any(_visible_devices(t) for t in node.targets):
            if any(isinstance(n, ast.Name) and n.id == param for n in ast.walk(node.value)):
                path = guards.path_to(scope.node, node)
                if not _reachable(path, param, unset):
                    return True
    return False


def _visible_devices(target: ast.expr) -> bool:
    return (
        isinstance(target, ast.Subscript)
        and isinstance(target.slice, ast.Constant)
        and target.slice.value == "CUDA_VISIBLE_DEVICES"
    )


# --- how a function uses its parameters --------------------------------------------


class _Uses:
    """Where a function reads each of some names (its device parameters): itself (`used`),
    or only to pass it on to another callable, as (callee, position, keyword, conditional).
    One walk of the function finds every read and its parent."""

    def __init__(self, scope: Scope, names: set[str]):
        self.scope = scope
        self._reads: dict[str, list[ast.Name]] = {}
        self._parents: dict[int, ast.AST] = {}
        stack = [scope.node]
        while stack:
            node = stack.pop()
            below = walk.children(node)
            for child in below:
                self._parents[id(child)] = node
            if isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load):
                self._reads.setdefault(node.id, []).append(node)
            stack.extend(below)
        self._read_by_class: set[str] | None = None  # `self.<attr>` its class reads

    @property
    def read(self) -> set[str]:
        return set(self._reads)

    def of(self, param: str) -> tuple[bool, list[tuple[str, int | None, str | None, bool, tuple[str, ...]]]]:
        used, passes = False, []
        for node in self._reads.get(param, []):
            parent = self._parents.get(id(node))
            passed = self._passed(node, parent, self._parents)
            if passed is not None:
                passes.append(passed)
            elif not self._dead_store(node, parent):
                used = True
        return used, passes

    def _passed(self, node: ast.Name, parent, parents) -> tuple | None:
        """(callee, position, keyword, conditional, also) when `node` is an argument of a call
        to a callable named in the project (not a method of an object)."""
        call, keyword = parent, None
        if isinstance(parent, ast.keyword):
            call, keyword = parents.get(id(parent)), parent.arg
        if not isinstance(call, ast.Call) or call.func is node:
            return None
        callee = qualname_of(call.func, self.scope)
        if callee is None or callee.startswith("torch"):
            return None
        position = None if keyword else next((i for i, a in enumerate(call.args) if a is node), None)
        if keyword is None and position is None:
            return None
        return (callee, position, keyword, *self._condition(call, node.id))

    def _condition(self, call: ast.Call, param: str) -> tuple[bool, tuple[str, ...]]:
        """(conditional, also): is the call inside a branch or loop whose test is about
        something else than `param`? A branch taken when another parameter keeps its falsy
        default (`get_device(gpu_id) if device is None else device`) still runs for a caller
        that omits both: not conditional, but passing that parameter (`also`) avoids it."""
        also: list[str] = []
        path = guards.path_to(self.scope.node, call)
        for outer, inner in zip(path[1:-1], path[2:]):
            if isinstance(outer, (ast.If, ast.IfExp, ast.While)):
                test = outer.test
            elif isinstance(outer, (ast.For, ast.AsyncFor)):
                test = outer.iter
            else:
                continue
            named = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
            if param in named:
                continue
            other = self._unset_parameter(named)
            if other is None or isinstance(outer, (ast.While, ast.For, ast.AsyncFor)) or inner is outer.test:
                return True, ()
            if not _reachable([outer, inner], other, self.scope.defaults[other].value):
                return True, ()
            also.append(other)
        return False, tuple(also)

    def _unset_parameter(self, named: set[str]) -> str | None:
        """The one device-like parameter with a falsy default a test names, if that is all
        it names."""
        params = [n for n in named if n in self.scope.params and _device_like(n) and _falsy(self.scope.defaults.get(n))]
        return params[0] if len(params) == 1 and len(named) == 1 else None

    def _dead_store(self, node: ast.Name, parent) -> bool:
        """`self.device = device` where no method of the class reads `self.device`."""
        if not (isinstance(parent, ast.Assign) and parent.value is node):
            return False
        cls = self.scope.enclosing_class
        if cls is None or not all(_self_attribute(t) for t in parent.targets):
            return False
        if self._read_by_class is None:
            self._read_by_class = {
                n.attr for n in walk.nodes(cls.node) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) and _self_attribute(n)
            }
        return not any(t.attr in self._read_by_class for t in parent.targets)


def _self_attribute(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
