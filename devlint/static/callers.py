"""Who calls a function: its call sites across the checked files, with the device each
caller has in scope. Asked by the thread stage, one function at a time up a call chain.

Only files that mention the function's name are parsed, each at most once. A call is
matched when its callee resolves to the function: through imports (`f`, `mod.f`,
`Class(...)` for `__init__`), or, for methods, through `self`/`cls` in the class
itself, a local assigned `Class(...)`, or `self.attr` assigned `Class(...)`. Calls
through anything else (a variable of unknown type, `super()`, a callback) are not
matched: they keep today's behaviour, since the new parameter defaults to it.
"""

from __future__ import annotations

import ast
import re
from collections import OrderedDict
from dataclasses import dataclass

from devlint.findings import Span
from devlint.static import analyze, placement
from devlint.static.context import FileContext
from devlint.static.engine import Check, run
from devlint.static.index import ProjectIndex, _last, _matches, class_qualname
from devlint.static.names import passes_unknown_args


@dataclass(frozen=True)
class Target:
    """A function being given a device parameter."""

    span: Span  # its `def` to the end of its name
    qualname: str  # as the index names it: `mod.f`, `mod.Class.method`, `mod.Class` for __init__
    method_of: str | None  # the class's qualified name, for methods (not __init__)
    positional: tuple[str, ...] = ()  # parameters a caller can pass by position (self excluded)
    # For a method that runs on an instance (not __init__, static or class methods): its
    # class, called to build that instance. No instance, no call of the method.
    constructor: Target | None = None

    @property
    def called_as(self) -> str:
        """The name its calls end in."""
        return self.qualname.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class CallSite:
    span: Span  # the callee expression of the call
    where: str  # "path:line"
    device: str | None  # a device expression in scope at the call
    passes: frozenset[str]  # keywords it passes already
    unknown_args: bool  # f(*args) or f(**kwargs)
    caller: Target | None  # the enclosing function, when it can take a device parameter
    why_not: str | None  # why the enclosing function cannot, when it cannot
    type_string_of: str | None  # `x` when the call passes `x.type()` to the watched parameter
    selected: bool = False  # the caller selected the device before the call (set_device, ...)
    visible: bool = False  # the caller set CUDA_VISIBLE_DEVICES before the call (itself or via a helper)
    enclosing: Target | None = None  # the function the call is in, when the index can name it
    caller_selects: bool = False  # the code around the call selects the device, before or after it
    args: int = 0  # how many arguments it passes by position


@dataclass(frozen=True)
class TypeSite:
    """A `.type(param)` in a type-string helper, and the factory it could build on the device."""

    where: str
    factory: Span | None  # None: the tensor does not come from a factory taking `device=`


class ProjectCalls:
    """The project's files as the project-wide stages read them. What was read is kept
    (`reads`), so that their output can be reused while it reads the same (`reads_same`)."""

    def __init__(self, works: list, index: ProjectIndex):
        self._works = [w for w in works if w.data is not None and w.notebook is None]
        self._by_name = {w.file.display: w for w in self._works}
        self._index = index
        self._contexts: OrderedDict[str, FileContext | None] = OrderedDict()
        self._defs: dict[str, dict[Span, object]] = {}  # file -> the scope of each function by its span
        self._words: dict[str, set[bytes]] = {}  # file -> its words, once many names are searched
        self._calling_memo: dict[str, list] = {}
        self._defines: dict[tuple[str, str], bool] = {}
        self._read: dict[str, str | None] = {}  # file -> content key (None: not a checked Python file)
        self._bases: dict[str, list[str]] | None = None  # file -> the last names of its class statements' bases

    def reads(self) -> dict:
        """Each file read (its content key), which files call each name searched for, and
        every file's content key (`works`: what an edit changed, for `reads_same`)."""
        calling = {name: [[w.file.display, w.key] for w in found] for name, found in self._calling_memo.items()}
        read = {"files": dict(self._read), "calling": calling, "works": self._keys()}
        if self._bases is not None:
            read["bases"] = self._bases
        return read

    def reads_same(self, reads: dict) -> bool:
        """Would these files give the same reads as those of an earlier run (`reads()`)?
        Only the files whose content changed since are searched again: the same content
        gives the same answers (every read is of the checked files' text), so an edit costs
        the edited files, and a tree with no edit costs nothing."""
        if any(self._key(name) != key for name, key in reads["files"].items()):
            return False
        before, now = reads.get("works"), self._keys()
        if before == now:
            return True
        if not isinstance(before, dict):  # written by a version that did not keep them
            return False
        gone = {name for name, key in before.items() if now.get(name) != key}
        changed = [w for w in self._works if before.get(w.file.display) != w.key]
        if "bases" in reads:
            if not isinstance(reads["bases"], dict):
                return False
            held = {name: found for name, found in reads["bases"].items() if name not in gone}
            held.update((w.file.display, _bases_in(w)) for w in changed)
            if _union(held) != _union(reads["bases"]):
                return False
        for name, found in reads["calling"].items():
            if any(display in gone for display, _ in found) or self._search(changed, name):
                return False
        return True

    def _keys(self) -> dict[str, str]:
        return {w.file.display: w.key for w in self._works}

    def _work(self, display: str):
        self._read[display] = self._key(display)
        return self._by_name.get(display)

    def _key(self, display: str) -> str | None:
        work = self._by_name.get(display)
        return work.key if work is not None else None

    def context(self, display: str) -> FileContext | None:
        """The file parsed, kept while it is among the last few asked for: a project's files
        are not all held as trees at once (the stages ask file by file, in order)."""
        if display in self._contexts:
            self._contexts.move_to_end(display)
            return self._contexts[display]
        work = self._work(display)
        ctx = None
        if work is not None:
            parsed = analyze.parse(work.data, display)
            if parsed.tree is not None:
                ctx = analyze.make_context(parsed, display, work.file.module, frozenset({"callers"}), self._index)
        self._contexts[display] = ctx
        if len(self._contexts) > _CONTEXTS_KEPT:
            oldest, _ = self._contexts.popitem(last=False)
            self._defs.pop(oldest, None)
        return ctx

    def target_at(self, span: Span, qualname: str) -> Target | None:
        """The function defined at `span`, as a Target (None if the file changed)."""
        ctx = self.context(span.filename)
        if ctx is None:
            return None
        if span.filename not in self._defs:  # one walk per file, however many of its functions are asked for
            finder = _DefFinder()
            _walk(ctx, finder)
            self._defs[span.filename] = finder.scopes
        scope = self._defs[span.filename].get(span)
        return _target(ctx, scope, qualname) if scope is not None else None

    def calls_to(self, target: Target, param: str | None = None) -> list[CallSite]:
        """Every matched call of `target` in the checked files (`param`: the parameter whose
        `x.type()` argument is of interest)."""
        position = target.positional.index(param) if param in target.positional else None
        found: list[CallSite] = []
        for work in self._calling(target):
            ctx = self.context(work.file.display)
            if ctx is None:
                continue
            finder = _CallFinder(target, param, position, found)
            _walk(ctx, finder)
        found.sort(key=lambda c: c.span)
        return found

    def files_calling(self, name: str) -> list[tuple[str, str]]:
        """(path, text) of each checked file with a call-shaped mention of `name` (not parsed)."""
        return [(w.file.display, w.text) for w in self._calling_name(name)]

    def defines(self, module: str, name: str) -> bool:
        """Does a checked module whose last component is `module` define `name` at its top
        level (`def name(` or `class name` at the start of a line), read from the text?"""
        key = (module, name)
        if key not in self._defines:
            written = re.compile(rf"^(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(name)}\b", re.M)
            self._defines[key] = any(_last(w.file.module) == module and written.search(w.text) for w in self._works)
        return self._defines[key]

    def home(self, display: str) -> str | None:
        """The last component of the module a checked file is (its package for __init__.py),
        as the index names its definitions."""
        work = self._by_name.get(display)
        return _last(work.file.module) if work is not None else None

    def subclassed(self, name: str) -> bool:
        """Does a class statement of a checked file name `name` among its bases (read from the
        text, whatever the file's other facts)? Its methods then run on more than its own
        instances."""
        if self._bases is None:
            self._bases = {w.file.display: found for w in self._works if (found := _bases_in(w))}
        return any(name in found for found in self._bases.values())

    def text(self, display: str) -> str | None:
        work = self._work(display)
        return work.text if work is not None else None

    def _calling(self, target: Target) -> list:
        return self._calling_name(target.called_as)

    def _calling_name(self, name: str) -> list:
        if name not in self._calling_memo:
            self._calling_memo[name] = self._search(self._works, name)
        return self._calling_memo[name]

    def _search(self, works: list, name: str) -> list:
        """The works among `works` with a call-shaped mention of `name`."""
        called = re.compile(rf"{re.escape(name)}\s*\(")
        try:
            needle = name.encode("latin-1")
        except UnicodeEncodeError:  # `text` is the bytes' latin-1 decoding: it holds no such name
            return []
        # Searched in the bytes; `text` is decoded only for the few files that hold the name.
        return [w for w in works if self._holds(w, needle) and _calls_in(w.text, called)]

    def _holds(self, work, needle: bytes) -> bool:
        """Does the file hold `needle`? A substring search for the first few names asked;
        past them (a file of thousands of functions, each given a parameter) a set of each
        file's words, made once: a call of the name is a whole word (`_calls_in`), so the set
        holds every name a call could be found for, and each search stops costing the file."""
        if len(self._calling_memo) < _SEARCHES_BEFORE_WORDS or not needle.isascii():
            return needle in work.data
        words = self._words.get(work.file.display)
        if words is None:
            words = self._words[work.file.display] = set(_WORD.findall(work.data))
        return needle in words

    def type_sites(self, target: Target, param: str) -> list[TypeSite]:
        ctx = self.context(target.span.filename)
        if ctx is None:
            return []
        finder = _TypeSiteFinder(target.span, param)
        _walk(ctx, finder)
        return finder.sites


_CONTEXTS_KEPT = 32
_SEARCHES_BEFORE_WORDS = 64
_WORD = re.compile(rb"\w+")
_CLASS_BASES = re.compile(rb"^[ \t]*class\s+\w+\s*\(([^)]*)\)", re.MULTILINE)
_BASE_NAME = re.compile(rb"[\w.]+")


def _bases_in(work) -> list[str]:
    """The last names of the bases of the file's class statements, sorted."""
    if b"class" not in work.data:
        return []
    found = {base.decode("latin-1").rsplit(".", 1)[-1] for bases in _CLASS_BASES.findall(work.data) for base in _BASE_NAME.findall(bases)}
    return sorted(found)


def _union(by_file: dict[str, list[str]]) -> set[str]:
    return {name for found in by_file.values() for name in found}


def _calls_in(text: str, called: re.Pattern) -> bool:
    """Does `text` hold `name(` as a call: a whole word, not after `def`/`class`?"""
    return next(call_starts(text, called), None) is not None


def call_starts(text: str, called: re.Pattern):
    """Where `text` holds `name(` (`called`) as a call: a whole word, not after `def`/`class`."""
    for match in called.finditer(text):
        start = match.start()
        if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
            continue
        if not text.endswith(("def ", "class "), max(0, start - 6), start):
            yield start


def _walk(ctx: FileContext, finder: Check) -> None:
    ctx.scope, ctx.ancestors = ctx.module_scope, []
    run(ctx, [finder])



def _target(ctx: FileContext, function, qualname: str) -> Target:
    owner = function.enclosing_class
    method_of = qualname.rsplit(".", 1)[0] if owner is not None and function.node.name != "__init__" else None
    args = function.node.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    if owner is not None and positional[:1] in (["self"], ["cls"]):
        positional = positional[1:]
    constructor = None
    if method_of is not None and not _static_or_class_method(function.node):
        constructor = Target(ctx.def_span(owner.node), method_of, None)
    return Target(ctx.def_span(function.node), qualname, method_of, tuple(positional), constructor)


def _static_or_class_method(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated `@staticmethod` or `@classmethod`: callable without an instance."""
    return any(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") for d in node.decorator_list)


def _function_target(ctx: FileContext) -> tuple[Target | None, str | None]:
    function = ctx.scope.function
    why = ctx.threadable(function)
    if why is not None:
        return None, why
    return _target(ctx, function, ctx.index.qualname_of(function)), None


def _enclosing(ctx: FileContext) -> Target | None:
    function = ctx.scope.function
    qualname = ctx.index.qualname_of(function) if function is not None else None
    return _target(ctx, function, qualname) if qualname else None


class _DefFinder(Check):
    code = "callers"

    def __init__(self):
        self.scopes: dict[Span, object] = {}

    def visit_FunctionDef(self, node, ctx: FileContext) -> None:
        self.scopes[ctx.def_span(node)] = ctx.scope.child(node)

    visit_AsyncFunctionDef = visit_FunctionDef


class _CallFinder(Check):
    code = "callers"

    def __init__(self, target: Target, param: str | None, position: int | None, found: list[CallSite]):
        self.target = target
        self.param = param
        self.position = position
        self.found = found

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if last != self.target.called_as or not self._resolves(node, ctx):
            return
        suggestion = ctx.suggest_device(node)
        caller, why = _function_target(ctx)
        self.found.append(
            CallSite(
                span=ctx.call_span(node),
                where=f"{ctx.filename}:{node.lineno}",
                device=suggestion.expr if suggestion else None,
                passes=frozenset(kw.arg for kw in node.keywords if kw.arg),
                unknown_args=passes_unknown_args(node),
                caller=caller,
                why_not=why,
                type_string_of=self._type_string_of(node, ctx),
                selected=ctx.device_selected_before(node),
                visible=ctx.visible_devices_set_before(node),
                enclosing=_enclosing(ctx),
                caller_selects=bool((ctx.scope.function or ctx.module_scope).device_selected_at),
                args=len(node.args),
            )
        )

    def _type_string_of(self, node: ast.Call, ctx: FileContext) -> str | None:
        if self.param is None:
            return None
        from devlint.static.names import argument

        given = argument(node, self.param, self.position)
        receiver = placement.type_string_of(given) if given is not None else None
        return ctx.text(receiver) if receiver is not None else None

    def _resolves(self, node: ast.Call, ctx: FileContext) -> bool:
        resolved = ctx.qualname(node.func)
        if resolved is not None:
            return ctx.index.same_definition(resolved, self.target.qualname)
        cls = self.target.method_of
        func = node.func
        if cls is None or not isinstance(func, ast.Attribute):
            return False
        owner = func.value
        function = ctx.scope.function
        if isinstance(owner, ast.Name) and function is not None and owner.id in ("self", "cls"):
            enclosing = function.enclosing_class
            return enclosing is not None and _matches(class_qualname(enclosing) or "", cls)
        if isinstance(owner, ast.Name):
            found = ctx.scope.lookup_values(owner.id)
            values = found[1] if found else []
            return bool(values) and all(self._builds(v, ctx) for v in values)
        if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) and owner.value.id == "self" and function:
            enclosing = function.enclosing_class
            values = [v for _, v in enclosing.self_attrs.get(owner.attr, [])] if enclosing else []
            return bool(values) and all(self._builds(v, ctx) for v in values)
        return False

    def _builds(self, value: ast.expr, ctx: FileContext) -> bool:
        """`Class(...)`, the class the method belongs to."""
        return isinstance(value, ast.Call) and ctx.index.same_definition(ctx.qualname(value.func) or "", self.target.method_of)


class _TypeSiteFinder(Check):
    code = "callers"

    def __init__(self, span: Span, param: str):
        self.span = span
        self.param = param
        self.sites: list[TypeSite] = []

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        function = ctx.scope.function
        if function is None or ctx.def_span(function.node) != self.span:
            return
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == "type" and len(node.args) == 1):
            return
        arg = node.args[0]
        if not (isinstance(arg, ast.Name) and arg.id == self.param):
            return
        factory = placement.unplaced_factory(ctx, func.value)
        if factory is None and placement.cpu_rooted(ctx, func.value) is None:
            return  # not a fresh tensor: it keeps its device under .type()
        self.sites.append(TypeSite(f"{ctx.filename}:{node.lineno}", ctx.call_span(factory) if factory is not None else None))
