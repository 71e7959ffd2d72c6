"""Shared logic of the rules about device values written in the source (DL002, DL008).

A device value is judged where it is used (`.to(x)`, `device=x`, `map_location=x`,
`torch.device(...)`) and where it is chosen (`device = ...`, `args.device = ...`,
`--device` defaults, `{"device": ...}`). A finding sits on the literal that
decides the device, so `device = "cuda" if ok else "cpu"` is reported once, on
its line, however many calls use `device` afterwards.
"""

from __future__ import annotations

import ast
import bisect

from devlint.static.engine import Check
from devlint.findings import Applicability, Fix
from devlint.static import guards, options, parts, placement, values, walk
from devlint.static.context import FileContext
from devlint.static.values import Kind, Value, names_a_device
from devlint.static.defaults import CURRENT_DEVICE
from devlint.static.names import argument, encloses, passes_unknown_args


# How the fix of a finding at a parameter's default begins: the selected stage knows them by it.
DEFAULT_ADVICE = "pass the device the program was given from every call of"


def _fallback_for_explicit_none(literal: ast.AST, ctx: FileContext) -> bool:
    """`if not device: device = "cuda"` in a function whose `device` defaults to a value that
    is not empty (`device=config.bert_gen_config.device`, Bert-VITS2): the branch runs only for
    a caller that passes None on purpose, and the default decides the device everywhere else."""
    function = ctx.scope.function
    if function is None:
        return False
    path = ctx.path_to(literal)
    return any(
        not _may_be_empty(default, ctx) and guards.only_when_unset(path, param)
        for param, default in function.defaults.items() if names_a_device(param)
    )


def _may_be_empty(default: ast.expr, ctx: FileContext) -> bool:
    """Is a default None or empty, written so or through a module name assigned so
    (`DEFAULT_DEVICE = None`)?"""
    if isinstance(default, ast.Constant):
        return not default.value
    if isinstance(default, ast.Name):
        found = ctx.module_scope.lookup_values(default.id)
        return found is not None and any(isinstance(v, ast.Constant) and not v.value for v in found[1])
    return False


def _passed_where_unread(ctx: FileContext) -> bool:
    """Is the node being visited the value of `device=` in a call of a project callable that
    never reads that parameter (index.never_reads)?"""
    parent, ancestors = ctx.parent, ctx.ancestors
    return (
        isinstance(parent, ast.keyword) and len(ancestors) > 1 and isinstance(ancestors[-2], ast.Call)
        and ctx.index.never_reads(ctx.qualname(ancestors[-2].func), parent.arg or "")
    )


def _device_uses(node: ast.Call, ctx: FileContext) -> tuple[list, list]:
    """placement.device_arguments and passed_as_device of the call, worked out once for the
    two rules that judge them (DL002, DL008 visit the same call one after the other)."""
    held = ctx.memo("device uses", _nothing_held)
    if held[0] is not node:
        held[0], held[1] = node, (list(placement.device_arguments(ctx, node)), list(placement.passed_as_device(ctx, node)))
    return held[1]


def _nothing_held() -> list:
    return [None, None]


class DeviceValueCheck(Check):
    current = False  # is this rule's value the current device (DL002), not GPU0 (DL008)?

    def matches(self, value: Value) -> bool:
        """Is this the value the rule reports?"""
        raise NotImplementedError

    def message(self, text: str, literal: ast.AST, ctx: FileContext) -> str:
        raise NotImplementedError

    def wanted(self, ctx: FileContext) -> bool:
        """Files with the rule's triggers, or that call a device helper of another module."""
        if super().wanted(ctx):
            return True
        text = ctx.source.text
        return any(f"{name}(" in text for name in ctx.index.device_helper_names())

    # --- where devices are used ---------------------------------------------

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if self._reported_by_dl011(node, ctx):
            return
        arguments, passed = _device_uses(node, ctx)
        for expr in arguments:
            if not self._module_device_in_place_of_own(expr, ctx):
                self.judge(expr, ctx, used=True)
        for expr, _ in passed:
            self.judge(expr, ctx, used=True)
        if ctx.qualname(node.func) == "torch.device" and not (
            isinstance(ctx.parent, (ast.withitem, ast.arguments)) or placement.without_effect(ctx, ctx.parent)
            or _passed_where_unread(ctx)
        ):
            self.judge(node, ctx, used=True)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef, ctx: FileContext) -> None:
        """A device parameter's default written out (`device="cuda:0"`): the device of every
        call that omits it. Judged where it is written; the project-wide selected stage drops
        it when the project calls the function (DL012 then judges each call that omits it) or
        every call passes the parameter. An unindexed one is DL012's, at the calls: reported
        where nothing calls it, it was more often code nobody runs than a leak (train corpus,
        round 6: +1 leak found, +12 false positives)."""
        if self.current:
            return
        args = node.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            if names_a_device(arg.arg) and not isinstance(default, (ast.Name, ast.Attribute)) and not (
                isinstance(default, ast.Constant) and not isinstance(default.value, str)
            ):  # None, a number or a name the module chose elsewhere: nothing written here to judge
                self._default_of = node.name
                try:
                    self.judge(default, ctx, used=False)
                finally:
                    self._default_of = None

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Dict(self, node: ast.Dict, ctx: FileContext) -> None:
        for value in placement.dict_device_values(node):
            self.judge(value, ctx, used=True)

    # --- where devices are chosen -------------------------------------------

    def visit_Assign(self, node: ast.Assign, ctx: FileContext) -> None:
        value = placement.selection_value(node)
        if value is not None:
            self.judge(value, ctx, used=False, chosen_by=node)

    visit_AnnAssign = visit_Assign

    def _never_used_as_a_device(self, node: ast.Assign | ast.AnnAssign, ctx: FileContext) -> bool:
        """A local `device = "cuda" ...` that its function never reads as a device: never read,
        only compared or tested, or only passed as a keyword that names something else
        (`onnx_provider=device`). A module-level one: see _module_global_unread."""
        function = ctx.scope.function
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not all(isinstance(t, ast.Name) for t in targets):
            return False
        names = {t.id for t in targets}
        if function is None:
            return self._module_global_unread(names, ctx)
        parents = ctx.memo(f"parents {id(function.node)}", lambda: walk.parents(function.node))
        for read in walk.nodes(function.node):
            if isinstance(read, ast.Name) and read.id in names and isinstance(read.ctx, ast.Load):
                if not _not_a_device_use(read, parents.get(id(read))):
                    return False
        return True

    def _module_global_unread(self, names: set[str], ctx: FileContext) -> bool:
        """A module-level `device = ...` that no code of the module reads and no other module
        imports (RIFE's refine.py after its model moved to RIFE.py): it chooses nothing."""
        read = ctx.memo("names read", lambda: {
            n.id for n in ast.walk(ctx.tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        })
        return not (names & read) and not any(ctx.index.imported_elsewhere(name) for name in names)

    def _module_device_in_place_of_own(self, expr: ast.expr, ctx: FileContext) -> bool:
        """`x.to(device)` in code that has a device of its own (`self.device`, given by its
        caller; or, in a torch module's `forward`, its input's), where `device` is the module's
        default (`device = get_device()` at module level of a library): the object's data goes
        to the module's choice, not the caller's. Reported at each such use, with the own
        device as the fix."""
        if not isinstance(expr, ast.Name) or ctx.scope.function is None:
            return False
        found = ctx.scope.lookup_values(expr.id)
        if found is None or found[0] is not ctx.module_scope:
            return False
        own, whose = ctx.suggest_device(expr), "the one this code was given"
        if own is None or not own.local or own.expr == expr.id or _written_in_the_class(own.expr, ctx):
            own, whose = ctx.input_device(), "its input's"
            if own is None:
                return False
        chosen = next((v for v in found[1] if self._module_default_matches(v, ctx)), None)
        if chosen is None:
            return False
        message = (
            f"`{expr.id}` here is the module's own device (`{ctx.text(chosen)}`, line {chosen.lineno}: "
            f"{'the current device' if self.current else 'GPU0'}), not {whose} (`{own.expr}`)"
        )
        fix = ctx.fix(self.code, f"Use `{own.expr}`", ctx.replace(expr, own.expr), applicability=Applicability.UNSAFE)
        ctx.report(self.code, expr, message, fix)
        return True

    def _module_default_matches(self, value: ast.expr, ctx: FileContext) -> bool:
        """Is a module-level value this rule's device, when the program did not choose it: a
        literal, or a device helper called without its index (`get_device()`)?"""
        saved, ctx.scope = ctx.scope, ctx.module_scope
        try:
            device = ctx.device(value, ints_are_devices=False)
            if device.current or device.gpu0 or not isinstance(value, ast.Call):
                return self.matches(device)
            for entry in ctx.index.cuda_defaults(ctx.qualname(value.func)):
                if entry.returns and argument(value, entry.param, entry.position) is None and not passes_unknown_args(value):
                    # DL012 reports the helper's call where the module makes its device: one finding, at the root
                    return "DL012" not in ctx.enabled and self.current == (entry.means == CURRENT_DEVICE)
            return self.matches(device)
        finally:
            ctx.scope = saved

    def _reported_by_dl011(self, node: ast.Call, ctx: FileContext) -> bool:
        """`torch.zeros(3).to("cuda")`: DL011 reports the factory, with a better fix."""
        func = node.func
        return (
            self.current
            and "DL011" in ctx.enabled
            and isinstance(func, ast.Attribute)
            and func.attr == "to"
            and placement.unplaced_factory(ctx, func.value) is not None
            and placement.moves_to_current_device(ctx, node)
        )

    def visit_Return(self, node: ast.Return, ctx: FileContext) -> None:
        function = ctx.scope.node
        if node.value is not None and isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if names_a_device(function.name):
                self.judge(node.value, ctx, used=False)

    # --- judging --------------------------------------------------------------

    def judge(self, expr: ast.expr, ctx: FileContext, used: bool, chosen_by: ast.AST | None = None) -> None:
        """Report the device `expr` denotes if it is this rule's kind (`chosen_by`: the
        selection line that assigns it, when judged where it is chosen)."""
        device = ctx.device(expr, ints_are_devices=used)
        if not self.matches(device) or device.node is None or device.in_callee:
            return
        if chosen_by is not None and self._never_used_as_a_device(chosen_by, ctx):
            return
        if any(isinstance(a, ast.Compare) for a in ctx.ancestors):
            return
        literal = device.node
        selection = self._selection_holding(literal, ctx)  # the `device = ...` line its value sits on
        if chosen_by is None and selection is not None and self._never_used_as_a_device(selection, ctx):
            return
        direct = encloses(expr, literal)
        if not direct and selection is not None:
            return  # visit_Assign reports it where it is chosen
        if ctx.device_selected_before(expr) and self.current:
            return
        if self.current and ctx.scope.function is None and ctx.module_scope.device_selected_at and selection is not None:
            return  # `device = torch.device("cuda")` at module level is the current device at each use, which the script selects
        if self.excused(literal, ctx):
            return
        text = ctx.text(literal)
        if _helper_call(literal, ctx):
            if ctx.index.cuda_defaults(ctx.qualname(literal.func)) and "DL012" in ctx.enabled:
                return  # a project helper called without its device parameter: DL012's finding
            fix = ctx.display_only(self.code, f"give `{ctx.text(literal.func)}(...)` the device (or index) the program was given")
            ctx.report(self.code, literal, self.message(text, literal, ctx), fix)
            return
        ctx.report(self.code, literal, self.message(text, literal, ctx), self.fix(literal, expr, text, ctx, used and direct))

    def excused(self, literal: ast.AST, ctx: FileContext) -> bool:
        """Is the device at `literal` not a leak where it stands, for a reason its context says:
        a fallback for callers without a device, a fallback for an explicit None where the
        parameter defaults to something else, a GPU picked only when the program chose the
        CPU, or the current device picked only when the program chose exactly that ("cuda")?"""
        if self._fallback_for_callers(literal, ctx) or _fallback_for_explicit_none(literal, ctx):
            return True
        def chosen(test: ast.expr) -> bool:
            return guards.says_cpu(test) or (self.current and guards.says_chose_current(test))

        return guards.only_when(ctx.path_to(literal), chosen, lambda test: False)

    def _fallback_for_callers(self, literal: ast.AST, ctx: FileContext) -> bool:
        """`if device is None: device = "cuda"` in a function whose callers DL012 judges, or
        `'cuda' + suffix` where `suffix` is `''` only when `gpu_id` is None: the value is this
        rule's only for a caller that passed no device, and that call is the leak."""
        if ctx.only_for_callers_without_device(literal):
            return True
        function = ctx.scope.function
        if function is None or not isinstance(literal, ast.expr):
            return False
        return any(
            entry.param in function.params
            and not self.matches(values.with_argument(literal, function, entry.param, values.PASSED))
            for entry in ctx.index.cuda_defaults(ctx.index.qualname_of(function))
        )

    def _selection_holding(self, literal: ast.AST, ctx: FileContext) -> ast.Assign | ast.AnnAssign | None:
        """The selection line (`device = ...`) whose value holds `literal`, if any. The values
        of two statements never overlap, so the one starting last before `literal` is the only
        candidate: found by bisection, not by a scan of the file's selections per finding."""
        starts, selections = ctx.memo("selections", lambda: _by_start(ctx.tree))
        i = bisect.bisect_right(starts, (literal.lineno, literal.col_offset)) - 1
        if i >= 0 and encloses(selections[i][1], literal):
            return selections[i][0]
        return None

    _default_of: str | None = None  # the function whose parameter default is being judged

    def fix(self, literal: ast.AST, expr: ast.expr, text: str, ctx: FileContext, used_here: bool) -> Fix:
        if self._default_of is not None:
            return ctx.display_only(
                self.code,
                f"{DEFAULT_ADVICE} `{self._default_of}` (the default is then never used), or default to None and leave "
                "the choice to the caller",
            )
        if used_here:
            found = ctx.suggest_device(literal)
            if found is not None:
                return ctx.fix(self.code, f"Use `{found.expr}` instead of `{text}`", ctx.replace(literal, found.expr))
        source = options.source_of_device(literal, ctx)
        if source is not None:
            return self._from_source(literal, source, ctx)
        if not used_here and self.current:
            return ctx.display_only(self.code, options.manual_step(literal, ctx))
        return ctx.display_only(
            self.code,
            'give it the index the program was given (a --gpu flag, LOCAL_RANK): `torch.device("cuda", index)`; '
            "or launch with CUDA_VISIBLE_DEVICES",
        )

    def _from_source(self, literal: ast.AST, source: options.Source, ctx: FileContext) -> Fix:
        """Build the device from what the user gave the program; comparisons of the chosen
        value with `"cuda"` are rewritten so that they stay true for `"cuda:N"`."""
        index_literal = isinstance(literal, ast.Constant) and type(literal.value) is int
        if source.is_device or index_literal:  # a device for a device, an index for an index
            new = source.expr
        elif isinstance(literal, ast.Call):  # torch.device("cuda") stays a call of the same name
            new = f'{ctx.text(literal.func)}("cuda", {source.expr})'
        else:
            new = f'f"cuda:{{{source.expr}}}"'
        edits = [ctx.replace(literal, new)]
        if not source.is_device and not index_literal:
            edits.extend(options.comparisons_kept_true(literal, ctx))
        return ctx.fix(self.code, f"Use `{new}`: {source.why}", *edits)


def _written_in_the_class(own: str, ctx: FileContext) -> bool:
    """Is the object's own device (`self.device`) a literal its class writes (`"cuda:0"`,
    `"cuda"`, `"cpu"`), not a device its caller gave it? Then it is no better a choice than the
    module's, and the module's device is not used in its place."""
    if not own.startswith("self."):
        return False
    function = ctx.scope.function
    cls = function.enclosing_class if function is not None else None
    assigned = cls.self_attrs.get(own[len("self."):], []) if cls is not None else []
    held = [values.evaluate(value, cls.child(method), project=ctx.index) for method, value in assigned]
    return bool(held) and all(v.kind in _LITERAL_KINDS for v in held)


_LITERAL_KINDS = frozenset({Kind.CPU, Kind.CURRENT, Kind.GPU, Kind.ALL})


def _by_start(tree: ast.Module) -> tuple[list[tuple[int, int]], list[tuple[ast.AST, ast.expr]]]:
    """The file's selection lines and their values, ordered by where the value starts. In a
    part of a module (static/parts.py), the part's: the selection holding a literal is in the
    literal's own top-level statement."""
    found = sorted(
        ((node, value) for node in parts.own_nodes(tree)
         if isinstance(node, (ast.Assign, ast.AnnAssign)) and (value := placement.selection_value(node)) is not None),
        key=lambda pair: (pair[1].lineno, pair[1].col_offset),
    )
    return [(value.lineno, value.col_offset) for _, value in found], found


def _helper_call(literal: ast.AST, ctx: FileContext) -> bool:
    """Is the value decided by a project function's return (`get_device()`), not written here?"""
    return isinstance(literal, ast.Call) and isinstance(literal.func, ast.Name) and literal.func.id != "str"


_DEVICE_KEYWORDS = frozenset({"map_location", "device_ids", "output_device"})


def _not_a_device_use(read: ast.Name, parent: ast.AST | None) -> bool:
    """Is this read of a device variable one that places nothing: a comparison, a test, or a
    keyword argument named for something else than a device?"""
    if isinstance(parent, ast.Compare) or (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not)):
        return True
    if isinstance(parent, (ast.If, ast.IfExp, ast.While, ast.Assert)) and parent.test is read:
        return True
    return isinstance(parent, ast.keyword) and parent.arg is not None and not (
        names_a_device(parent.arg) or parent.arg in _DEVICE_KEYWORDS
    )
