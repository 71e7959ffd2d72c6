"""Everything a check may ask about the file it is looking at.

One FileContext per file. The engine keeps `scope` and `ancestors` current while
it walks; checks call `report()` and the helpers below, and never walk the tree
themselves unless they look at a sub-expression.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import replace

from devlint import catalog
from devlint.findings import AddArgument, Applicability, Edit, Finding, Fix, Library, Location, Operation, Span, Threading
from devlint.static import distributed, guards, launchers, names, suggest, values
from devlint.static.index import ProjectIndex, class_qualname
from devlint.static.names import argument
from devlint.static.scope import Scope, _shallow, build_scope
from devlint.static.source import Source


_MISSING = object()
_ONE_LINE = re.compile(r"\s*\n\s*")
_DEF_NAME = re.compile(r"(?:async\s+)?(?:def|class)\s+(\w+)")
# Decorators that make a function something a caller cannot pass `device=` to.
_NOT_CALLABLE_WITH_KEYWORDS = ("property", "setter", "getter", "deleter", "overload", "cached_property")


# `with` contexts that make a device current for their block: `torch.cuda.stream(s)` sets the
# current device to the stream's, and back on exit (torch 2.13 cuda/__init__.py:786-811,
# StreamContext through set_stream, whose _cuda_setStream switches the device).
_DEVICE_CONTEXTS = frozenset({"torch.cuda.device", "torch.cuda.stream"})


def _a_stream(expr: ast.expr) -> bool:
    """`with stream:` / `with self.stream:`: a stream (or stream context) entered, which makes
    its device current; only a stream can be entered under such a name."""
    name = expr.attr if isinstance(expr, ast.Attribute) else expr.id if isinstance(expr, ast.Name) else ""
    return "stream" in name.lower()


class FileContext:
    def __init__(
        self,
        filename: str,
        source: Source,
        tree: ast.Module,
        module_name: str,
        enabled: frozenset[str],
        index: ProjectIndex,
        module_scope: Scope | None = None,
    ):
        self.filename = filename
        self.source = source
        self.tree = tree  # a module checked in parts: the part being checked (static/parts.py)
        self.module_name = module_name
        self.enabled = enabled
        self.index = index
        package = filename.replace("\\", "/").rpartition("/")[2] in ("__init__.py", "__init__.pyi")
        self.module_scope: Scope = module_scope or build_scope(tree, None, module_name, package)
        self.scope = self.module_scope
        self.ancestors: list[ast.AST] = []
        self.visiting: ast.AST | None = None  # the node the engine's handlers are given (a child of ancestors[-1])
        self.findings: list[Finding] = []
        self._reported: set[tuple[str, int]] = set()
        self._memo: dict = {}  # by name, or (name, id) for a per-scope one
        self._qualnames: dict[tuple[int, int], str | None] = {}
        self._last_qualname: tuple = (None, None, None)  # (expr, scope, qualname)
        self._selected: dict[tuple[int, int, int, int], bool] = {}
        self._shared: dict = {}  # report's messages and fixes without edits, each kept once

    def enter_part(self, root: ast.Module) -> None:
        """Check the next part of a module checked in parts (static/parts.py). What was
        remembered about the last part's nodes is dropped: they are gone, and their ids may
        be given to the next part's. What depends only on the text and the index is kept."""
        self.tree = self.module_scope.node = root
        self.module_scope._children.clear()
        self.module_scope.__dict__.pop("_device_values", None)  # values.evaluate's, by node id
        self.scope = self.module_scope
        self.ancestors.clear()
        self._reported.clear()
        self._qualnames.clear()
        self._last_qualname = (None, None, None)
        self._selected.clear()
        self._memo = {key: value for key, value in self._memo.items() if key in _TEXT_MEMOS}

    def memo(self, key: str, compute):
        """A per-file value computed once, on first use."""
        found = self._memo.get(key, _MISSING)
        if found is _MISSING:
            found = self._memo[key] = compute()
        return found

    # --- names and devices -------------------------------------------------

    def global_name(self, name: str) -> str:
        """The qualified name of this module's global `name`, as other modules import it."""
        return f"{self.module_name}.{name}" if self.module_name else name

    def qualname(self, expr: ast.expr) -> str | None:
        """Memoised per node: every check asks it of every call's callee, one after the other
        (the last answer is kept apart, and asked first)."""
        scope = self.scope
        last = self._last_qualname
        if last[0] is expr and last[1] is scope:
            return last[2]
        key = (expr, id(scope))
        cached = self._qualnames.get(key, _MISSING)
        if cached is _MISSING:
            cached = self._qualnames[key] = names.qualname(expr, scope)
        self._last_qualname = (expr, scope, cached)
        return cached

    def assigned(self, expr: ast.expr | None) -> list[ast.expr]:
        """What the source assigns to `expr` here: a name's values in scope, or a `self.<attr>`'s
        in the class's methods; [] for anything else."""
        if isinstance(expr, ast.Name):
            found = self.scope.lookup_values(expr.id)
            return list(found[1]) if found is not None else []
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            function = self.scope.function
            cls = function.enclosing_class if function is not None else None
            return [value for _, value in cls.self_attrs.get(expr.attr, [])] if cls is not None else []
        return []

    def device(self, expr: ast.expr | None, ints_are_devices: bool = True) -> values.Value:
        """The device value `expr` holds here (values.py)."""
        return values.evaluate(expr, self.scope, ints_are_devices=ints_are_devices, project=self.index)

    def text(self, node: ast.AST) -> str:
        return self.source.between(node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)

    def start(self, node: ast.AST) -> Location:
        return self.source.location(node.lineno, node.col_offset)

    def end(self, node: ast.AST) -> Location:
        return self.source.location(node.end_lineno, node.end_col_offset)

    @property
    def parent(self) -> ast.AST | None:
        return self.ancestors[-1] if self.ancestors else None

    def device_selected_before(self, node: ast.AST) -> bool:
        """_device_selected_before, once per node where it stands: several rules ask it of
        the same call (DL001 and DL011 of every `.cuda()`), a fifth of a check of a file
        with a finding on every line. What it reads is the node, the scope and the
        ancestors, a path from the module down that its last node and length name."""
        ancestors = self.ancestors
        key = (id(node), id(self.scope), len(ancestors), id(ancestors[-1]) if ancestors else 0)
        selected = self._selected.get(key)
        if selected is None:
            selected = self._selected[key] = self._device_selected_before(node)
        return selected

    def _device_selected_before(self, node: ast.AST) -> bool:
        """Did this scope's own code call `torch.cuda.set_device(i)` earlier (or a helper that sets
        CUDA_VISIBLE_DEVICES from the GPU it is given), is the node inside `with
        torch.cuda.device(i)`, does it only run when one GPU is visible, or only under a
        process group that the project set up after selecting the device? Then the current
        device is the chosen one."""
        scope = self.scope.function or self.module_scope
        line = node.lineno
        # In turn: what the later ones ask of the index is not asked where an earlier one answers.
        selected = scope.device_selected_at
        if selected and min(selected) < line:
            return True
        selected = self._selector_calls(scope)
        if selected and min(selected) < line:
            return True
        selected = self._setter_calls(scope)
        if selected and min(selected) < line:
            return True
        if self._mentions_a_launcher() and launchers.binds_device_before(scope, self.module_scope, line):
            return True
        for ancestor in self.ancestors:
            if isinstance(ancestor, (ast.With, ast.AsyncWith)):
                for item in ancestor.items:
                    expr = item.context_expr
                    if (
                        isinstance(expr, ast.Call)
                        and self.qualname(expr.func) in _DEVICE_CONTEXTS
                        and expr.args
                        and not self.device(expr.args[0]).gpu0
                    ):
                        return True
                    if _a_stream(expr):
                        return True
        if guards.only_with_one_gpu(self.path_to(node), self.scope):
            return True
        if self._under_launcher():
            return True
        if self._in_a_worker_method(node):
            return True
        return self.index.process_group_selects_device() and self._only_under_process_group(node)

    def _in_a_worker_method(self, node: ast.AST) -> bool:
        """Is the code a method (not `__init__`) of a per-GPU worker class, or of a class such
        a worker builds (index: runs_on_a_worker_device), past any `set_device` of its own?
        The worker made its GPU current before it calls them."""
        function = self.scope.function
        cls = function.enclosing_class if function is not None else None
        if cls is None or function.parent is not cls or function.node.name == "__init__":
            return False
        if function.device_selected_at and node.lineno < min(function.device_selected_at):
            return False  # the worker's own set-up, before it selects
        return self.index.runs_on_a_worker_device(class_qualname(cls))

    def _under_launcher(self) -> bool:
        """Is the code a LightningModule's method, a function handed to `fabric.launch`, or one
        reached only from code under a launcher? The launcher made the process's GPU current
        before it runs (static/launchers.py)."""
        function = self.scope.function
        if function is None or not self._mentions_a_launcher():
            return False
        launched = self.memo("launched functions", lambda: launchers.launched_functions(self.tree))
        reached = self.memo("reached under a launcher", lambda: launchers.reached_only_under(self.module_scope, launched | self._lightning_methods()))
        while function is not None:
            cls = function.enclosing_class
            if cls is not None and function.node.name != "__init__" and launchers.lightning_module(cls.node, lambda e: names.qualname(e, cls)):
                return True  # a trainer calls its hooks after selecting the device; __init__ runs before
            name = getattr(function.node, "name", None)
            if name in launched or name in reached:
                return True
            function = function.parent.function if function.parent is not None else None
        return False

    def _mentions_a_launcher(self) -> bool:
        return self.memo("launcher mentioned", lambda: any(w in self.source.text for w in launchers.WORDS))

    def _lightning_methods(self) -> set[str]:
        """Names of the methods of the module's LightningModules."""
        found = set()
        for node in self.tree.body:
            if isinstance(node, ast.ClassDef) and launchers.lightning_module(node, lambda e: names.qualname(e, self.module_scope)):
                found.update(m.name for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name != "__init__")
        return found

    def _only_under_process_group(self, node: ast.AST) -> bool:
        return distributed.only_under_process_group(self.path_to(node), self.scope)

    def only_for_callers_without_device(self, node: ast.AST) -> bool:
        """Does `node` run only when a device parameter of its function is None, in a
        function whose callers DL012 judges (`if device is None: device = get_device()`)?
        Then the call omitting the device is the leak, not this fallback."""
        function = self.scope.function
        if function is None:
            return False
        entries = [e for e in self.index.cuda_defaults(self.index.qualname_of(function)) if e.param in function.params]
        if not entries:
            return False
        path = self.path_to(node)
        return any(guards.only_when_unset(path, entry.param, entry.sentinel) for entry in entries)

    def path_to(self, node: ast.AST) -> list[ast.AST]:
        """The chain of nodes from the enclosing function (or module) down to `node`, which is
        the node being visited or one inside it: what guards.only_when reads."""
        function = self.scope.function
        root = function.node if function is not None else self.tree
        try:
            start = self.ancestors.index(root)  # nodes compare by identity
        except ValueError:
            return []
        if node is self.visiting:  # a child of the last ancestor: no search below it
            return [*self.ancestors[start:], node]
        return self.ancestors[start:-1] + guards.path_to(self.ancestors[-1], node)

    def visible_devices_set_before(self, node: ast.AST) -> bool:
        """Did this scope's own code set CUDA_VISIBLE_DEVICES earlier, itself or through a
        helper given the GPU? Then "cuda:0" is the first GPU it names, the chosen one."""
        scope = self.scope.function or self.module_scope
        lines = scope.visible_devices_set_at + self._selector_calls(scope)
        return any(line < node.lineno for line in lines)

    def _selector_calls(self, scope) -> list[int]:
        """Lines where `scope`'s own code calls a helper that sets CUDA_VISIBLE_DEVICES from
        the device it is given (`select_device(opt.device)`), and gives it one."""
        found = self._memo.get(("selector calls", id(scope)))
        if found is not None:
            return found

        def compute() -> list[int]:
            selectors = self.index.selector_names()
            lines = []
            for node in _shallow(scope.body) if selectors else ():
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if last not in selectors:
                    continue
                for entry in self.index.cuda_defaults(names.qualname(func, scope)):
                    given = argument(node, entry.param, entry.position)
                    if entry.selects and given is not None and not (isinstance(given, ast.Constant) and not given.value):
                        lines.append(node.lineno)
            return lines

        found = self._memo[("selector calls", id(scope))] = compute()
        return found

    def _setter_calls(self, scope) -> list[int]:
        """Lines where `scope`'s own code calls a function that makes a GPU current
        (index.sets_current_device: dinov2's `setup(args)`)."""
        found = self._memo.get(("setter calls", id(scope)))
        if found is not None:
            return found

        def compute() -> list[int]:
            setters = self.memo("setters named", lambda: [n for n in self.index.setter_names() if f"{n}(" in self.source.text])
            lines = []
            for node in _shallow(scope.body) if setters else ():
                if isinstance(node, ast.Call):
                    func = node.func
                    last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                    if last in setters and self.index.sets_current_device(names.qualname(func, scope)):
                        lines.append(node.lineno)
            return lines

        found = self._memo[("setter calls", id(scope))] = compute()
        return found

    # --- reporting ---------------------------------------------------------

    def report(
        self,
        code: str,
        node: ast.AST,
        message: str,
        fix: Fix | None = None,
        notes: tuple[str, ...] = (),
        library: Library | None = None,
    ) -> None:
        """Record a finding once per (code, node), if the code is enabled (`library`: the
        library version whose source or table the finding relies on)."""
        if code not in self.enabled or (code, id(node)) in self._reported:
            return
        self._reported.add((code, id(node)))
        if fix is None:
            fix = self.display_only(code)
        # Code quoted in a message may span lines: a message is one line.
        if "\n" in message:
            message = _ONE_LINE.sub(" ", message)
        if "\n" in fix.message:
            fix = replace(fix, message=_ONE_LINE.sub(" ", fix.message))
        # A file's findings of one rule often say the same: one string and one fix for all
        # (a finding on each of 200,000 lines then holds little more than its position).
        message = self._shared.setdefault(message, message)
        if not fix.edits and fix.threading is None:
            fix = self._shared.setdefault((fix.applicability, fix.message), fix)
        self.findings.append(
            Finding(
                code=code,
                message=message,
                filename=self.filename,
                location=self.start(node),
                end_location=self.end(node),
                fix=fix,
                noqa_row=node.lineno,
                notes=notes,
                library=library,
            )
        )

    def fix(self, code: str, message: str, *edits: Edit, applicability: Applicability | None = None) -> Fix:
        """A fix graded as the catalog grades this rule (unless told otherwise)."""
        grade = applicability or catalog.get(code).fix_applicability or Applicability.DISPLAY_ONLY
        return Fix(grade, message, tuple(edits))

    def display_only(self, code: str, message: str | None = None) -> Fix:
        """One Fix per message in a file (report shares them anyway)."""
        message = message or catalog.get(code).fix_summary
        key = (Applicability.DISPLAY_ONLY, message)
        fix = self._shared.get(key)
        if fix is None:
            fix = self._shared[key] = Fix(Applicability.DISPLAY_ONLY, message, ())
        return fix

    def replace(self, node: ast.AST, content: str) -> Edit:
        return Edit(content, self.start(node), self.end(node))

    def insert_after(self, node: ast.AST, content: str) -> Edit:
        end = self.end(node)
        return Edit(content, end, end)

    def add_keyword(self, call: ast.Call, text: str) -> Edit:
        """Append `text` (e.g. `map_location="cpu"`) as the call's last argument."""
        parts = [*call.args, *call.keywords]
        if parts:
            last = max(parts, key=lambda p: (p.end_lineno, p.end_col_offset))
            return self.insert_after(last, f", {text}")
        end = self.end(call)
        before_paren = Location(end.row, end.column - 1)
        return Edit(text, before_paren, before_paren)

    def method_name_start(self, call: ast.Call) -> Location:
        """Where `name(...)` of `receiver.name(...)` begins."""
        func = call.func
        assert isinstance(func, ast.Attribute)
        end = self.end(func)
        return Location(end.row, end.column - len(func.attr))

    def replace_method(self, call: ast.Call, text: str) -> Edit:
        """Replace `name(...)` of `receiver.name(...)` with `text`."""
        return Edit(text, self.method_name_start(call), self.end(call))

    def drop_method(self, call: ast.Call) -> Edit:
        """Remove `.name(...)` from `receiver.name(...)`, keeping the receiver."""
        receiver = call.func.value
        return Edit("", self.end(receiver), self.end(call))

    # --- structural fixes ----------------------------------------------------

    def span(self, node: ast.AST) -> Span:
        start, end = self.start(node), self.end(node)
        return Span(self.filename, (start.row, start.column), (end.row, end.column))

    def def_span(self, function: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Span:
        """From the `def` (or `async`, `class`) keyword to the end of the function's (class's) name."""
        start = self.start(function)
        line = self.source.line(function.lineno)
        match = _DEF_NAME.match(line, start.column - 1)
        end = match.end(1) + 1 if match and match.group(1) == function.name else start.column
        return Span(self.filename, (start.row, start.column), (start.row, end))

    def call_span(self, call: ast.Call) -> Span:
        """A call is named by its callee expression: `torch.arange(w)` and the
        `torch.arange(w).type(t)` around it start at the same place but have different callees."""
        return self.span(call.func)

    def threadable(self, scope) -> str | None:
        """Why a device parameter cannot be added to this function, or None if it can."""
        node = scope.node if scope is not None else None
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return "module-level code has no caller to take a device from"
        if self.index.qualname_of(scope) is None:
            return f"`{node.name}` is nested in another function"
        if node.args.kwarg is not None:
            return f"`{node.name}` takes **{node.args.kwarg.arg}, which may already carry `device`"
        for decorator in node.decorator_list:
            name = decorator.attr if isinstance(decorator, ast.Attribute) else getattr(decorator, "id", "")
            if name in _NOT_CALLABLE_WITH_KEYWORDS:
                return f"`{node.name}` is a @{name}"
        if "device" in scope.params or "device" in scope.assigns:
            return f"`{node.name}` already uses the name `device`"
        return None

    def thread_device(
        self,
        code: str,
        site: tuple[Operation, ...] | Callable[[], tuple[Operation, ...]],
        without: str,
        default: str = "None",
        scope=None,
        type_string: str | None = None,
    ) -> Fix:
        """A fix that adds a `device` parameter to the function at `scope` (default: the
        enclosing one), uses it at `site`, and has the callers pass their device; planned
        across the project by the check pipeline. `without`: the suggestion when it cannot be.
        `site` may be given as a function, called only when the fix can be threaded."""
        scope = scope or self.scope.function
        reason = self.threadable(scope)
        if reason is not None:
            return self.display_only(code, f"{without} ({reason})")
        if callable(site):
            site = site()
        threading = Threading(
            target=self.def_span(scope.node),
            function=self.index.qualname_of(scope),
            parameter="device",
            default=default,
            site=site,
            type_string=type_string,
        )
        return Fix(Applicability.UNSAFE, without, (), threading)

    def use_device_at(self, call: ast.Call, keyword: str | None) -> tuple[AddArgument]:
        """The site operation: pass the threaded `device` to this call."""
        return (AddArgument(self.call_span(call), keyword, "device"),)

    def suggest_device(self, node: ast.AST) -> suggest.Suggestion | None:
        return suggest.device_in_scope(self.scope, node, self.module_scope)

    def input_device(self) -> suggest.Suggestion | None:
        """In a method of a torch module (other than `__init__`), the device of the input it
        works on (`x.device`): where the program moved the module, whatever this file chose."""
        function = self.scope.function
        cls = function.enclosing_class if function is not None else None
        if cls is None or function.node.name == "__init__" or not self.inherits_torch_module(cls):
            return None
        return self.memo(f"input device {id(function.node)}", lambda: suggest.input_device(function))

    def inherits_torch_module(self, cls: Scope) -> bool:
        """Does the class inherit `torch.nn.Module`, directly (`nn.Module`, `nn.Sequential`) or
        through the project's own classes?"""
        return self._inherits(cls, _a_torch_module)

    def in_dataset(self) -> bool:
        """Is the code in a method of a torch `Dataset`? Its items are made on the CPU, in
        DataLoader workers that cannot use CUDA after a fork, so what it reads is CPU data."""
        function = self.scope.function
        cls = function.enclosing_class if function is not None else None
        return cls is not None and self._inherits(cls, lambda name: name in _DATASETS)

    def _inherits(self, cls: Scope, wanted) -> bool:
        for base in cls.node.bases:
            name = names.qualname(base, cls.parent)
            if any(wanted(n) for n in (name, *self.index.ancestors(name)) if n):
                return True
        return False

    def suggest_index(self, node: ast.AST) -> str | None:
        return suggest.index_in_scope(self.scope, node, self.module_scope)

    def text_args(self, call: ast.Call) -> str:
        """The source of a call's arguments, as written between its parentheses."""
        parts = [*call.args, *call.keywords]
        if not parts:
            return ""
        first = min(parts, key=lambda p: (p.lineno, p.col_offset))
        last = max(parts, key=lambda p: (p.end_lineno, p.end_col_offset))
        return self.source.segment(self.start(first), self.end(last))

    def torch_module(self) -> tuple[str, tuple[Edit, ...]]:
        """The name this module uses for `torch` (`th` after `import torch as th`), and the
        edit that adds `import torch` when no name is bound to it."""
        names = [local for local, target in self.module_scope.imports.items() if target == "torch"]
        if names:
            return ("torch" if "torch" in names else sorted(names)[0]), ()
        return "torch", (self._import_edit("import torch"),)

    def _import_edit(self, statement: str) -> Edit:
        """Insert `statement` on its own line after the docstring and `__future__` imports."""
        body = self.tree.body
        position = 0
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            position = 1
        while position < len(body) and isinstance(body[position], ast.ImportFrom) and body[position].module == "__future__":
            position += 1
        if position < len(body):
            row = body[position].lineno
            for decorator in getattr(body[position], "decorator_list", []):
                row = min(row, decorator.lineno)
            where = Location(row, 1)
            return Edit(statement + self.source.newline, where, where)
        end = Location(len(self.source.line_starts), len(self.source.line(len(self.source.line_starts))) + 1)
        prefix = self.source.newline if self.source.line(end.row) else ""
        return Edit(prefix + statement + self.source.newline, end, end)


# Memos that depend on the file's text and the index only, kept from part to part.
_TEXT_MEMOS = frozenset({"launcher mentioned", "device parameter names", "setters named"})

_DATASETS = frozenset({
    "torch.utils.data.Dataset", "torch.utils.data.IterableDataset",
    "torch.utils.data.dataset.Dataset", "torch.utils.data.dataset.IterableDataset",
})


def _a_torch_module(qualname: str | None) -> bool:
    """`torch.nn.Module` and torch's own layers and containers (`torch.nn.Sequential`)."""
    if not qualname or not qualname.startswith("torch.nn."):
        return False
    last = qualname.rsplit(".", 1)[-1]
    return last[:1].isupper() and last not in ("Parameter", "Buffer", "UninitializedParameter")
