"""DL012: a call that omits a device parameter whose default lands on the current device or GPU0."""

from __future__ import annotations

import ast

from devlint import catalog
from devlint.static import index as project_index
from devlint.static import values
from devlint.static.context import FileContext
from devlint.static.defaults import GPU0, Default
from devlint.static.engine import Check
from devlint.static.names import argument, has_argument


class ReliesOnCudaDefault(Check):
    code = "DL012"

    def wanted(self, ctx: FileContext) -> bool:
        return True  # the names it looks for come from the project index, not the catalog

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        for kw in node.keywords:
            if kw.arg == "fn":
                self._callback(kw.value, ctx)
        name = ctx.qualname(node.func)
        if name == "torch.hub.load":
            entry = _hub_entry(node)
            if entry is not None and self._relies_on(node, entry, ctx):
                self._report(node, entry, ctx)
            return
        for entry in ctx.index.cuda_defaults(name):
            chosen = _sentinel_passed(node, entry, ctx)
            if chosen is not None:
                if not ctx.device_selected_before(node):
                    self._report_sentinel(node, chosen, entry, ctx)
                return
            if self._relies_on(node, entry, ctx):
                self._report(node, entry, ctx)
                return

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef, ctx: FileContext) -> None:
        """A class (its `__init__`) or function that the project's YAML configs build
        (`target:` with `params:`, ldm's instantiate_from_config; Hydra's `_target_:`): a
        build whose arguments leave out the device is a call that omits it. Reported at the
        default, the line that decides for every such config."""
        if not any(d is not None for d in (*node.args.defaults, *node.args.kw_defaults)):
            return
        qualname = project_index.qualname_in(ctx.scope, node)
        builds = ctx.index.config_builds(qualname)
        if not builds:
            return
        defaults = values.scope_of(node, ctx.scope).defaults
        for entry in ctx.index.cuda_defaults(qualname):
            default = defaults.get(entry.param)
            if default is None or entry.ignores or not entry.used:
                continue
            omitting = [b for b in builds if entry.param not in b.given and not any(other in b.given for other in entry.also)]
            if not omitting:
                continue
            more = f" and {len(omitting) - 1} more" if len(omitting) > 1 else ""
            message = (
                f"`{node.name if node.name != '__init__' else qualname.rsplit('.', 1)[-1]}` is built from a config "
                f"({omitting[0].where}{more}) that leaves `{entry.param}` out: it defaults to {entry.default}, {entry.means}"
            )
            advice = f"give the config's `params` a `{entry.param}`, or take it from what the object is used with (the model's device) instead of a default"
            ctx.report(self.code, default, message, ctx.display_only(self.code, advice))

    visit_AsyncFunctionDef = visit_FunctionDef

    def _relies_on(self, node: ast.Call, entry: Default, ctx: FileContext) -> bool:
        if entry.ignores:  # a library that drops the device it is given: no argument helps
            return not ctx.device_selected_before(node)
        if has_argument(node, entry.param, entry.position):
            given = argument(node, entry.param, entry.position)
            if not (entry.none_means_cuda and isinstance(given, ast.Constant) and given.value is None):
                return False
        if any(has_argument(node, other, None) for other in entry.also):
            return False
        if entry.returns and isinstance(ctx.parent, ast.Expr):
            return False  # a device helper whose result is thrown away
        if ctx.only_for_callers_without_device(node):
            return False  # a fallback for this function's own callers: reported at those that omit it
        return not ctx.device_selected_before(node)

    def _report(self, node: ast.Call, entry: Default, ctx: FileContext) -> None:
        name = ctx.text(node.func)
        if entry.ignores:
            message = f"`{name}(...)` {entry.ignores} ({entry.where})"
            fix = ctx.display_only(self.code, _IGNORES_FIX.format(library=entry.library.name if entry.library else "the library"))
        else:
            message = f"`{name}(...)` omits `{entry.param}`, which defaults to {entry.default} ({entry.where}): {entry.means}"
            fix = self._fix(node, entry, ctx)
        ctx.report(self.code, node, message, fix, library=entry.library)

    def _callback(self, expr: ast.expr, ctx: FileContext) -> None:
        """A function of this module handed to a UI framework as its callback
        (`button.click(fn=sample, inputs=[...])`, gradio): the framework calls it with the
        inputs only, so a device parameter keeps its default. Reported at the default."""
        function = values.module_function(expr, ctx.scope)
        if function is None:
            return
        defaults = values.scope_of(function, ctx.scope).defaults
        for entry in ctx.index.cuda_defaults(ctx.qualname(expr)):
            default = defaults.get(entry.param)
            if default is None or entry.ignores:
                continue
            message = (
                f"`{expr.id}` is handed to the framework as `fn=`, which calls it without `{entry.param}`: "
                f"it defaults to {entry.default}, {entry.means}"
            )
            ctx.report(self.code, default, message, ctx.display_only(self.code, "give the callback the device the program was given (`functools.partial(fn, device=device)`, or a module-level choice)"))

    def _report_sentinel(self, node: ast.Call, chosen: ast.Constant, entry: Default, ctx: FileContext) -> None:
        """Reported where the sentinel is written (`device = "auto"`): that line chooses, however
        many calls pass it on."""
        message = (
            f"`{ctx.text(chosen)}` given to `{ctx.text(node.func)}(...)` as `{entry.param}` resolves to "
            f"{entry.default.partition(' -> ')[2]} ({entry.where}): {entry.means}"
        )
        fix = ctx.display_only(self.code, f"pass the device the program was given instead of `{ctx.text(chosen)}`")
        ctx.report(self.code, chosen, message, fix, library=entry.library)

    def _fix(self, node: ast.Call, entry: Default, ctx: FileContext):
        without = f"pass `{entry.param}=` with the {'GPU index' if entry.index else 'target device'}"
        if entry.index:
            index = _index_at_hand(node, entry, ctx)
            if index is None:
                return ctx.display_only(self.code, without)
            return ctx.fix(self.code, f"Pass `{entry.param}={index}`", ctx.add_keyword(node, f"{entry.param}={index}"))
        found = ctx.suggest_device(node)
        if found is not None and not _names_the_sentinel(found.expr, entry, ctx):
            return ctx.fix(self.code, f"Pass `{entry.param}={found.expr}`", ctx.add_keyword(node, f"{entry.param}={found.expr}"))
        # The new parameter defaults to what the callee would have used, so a caller that
        # passes nothing gets what it got before.
        default = "None" if entry.none_means_cuda else entry.default
        if entry.param == "device" and _is_literal(default):
            return ctx.thread_device(self.code, ctx.use_device_at(node, entry.param), without, default=default)
        return ctx.display_only(self.code, without)


_IGNORES_FIX = (
    "select the GPU before the call (`torch.cuda.set_device(device)`, or `with torch.cuda.device(device):`), "
    "or install a {library} version that passes the device on"
)


def _sentinel_passed(node: ast.Call, entry: Default, ctx: FileContext) -> ast.Constant | None:
    """The literal sentinel ("auto") the call passes for a parameter that resolves it to the
    current device, written in the call or in the one assignment of the name it passes."""
    if entry.sentinel is None or not has_argument(node, entry.param, entry.position):
        return None
    return _sentinel_held(argument(node, entry.param, entry.position), entry, ctx)


def _sentinel_held(expr: ast.expr, entry: Default, ctx: FileContext) -> ast.Constant | None:
    """The sentinel literal `expr` is, or that the one assignment of the name `expr` holds."""
    held = ctx.assigned(expr) if isinstance(expr, ast.Name) else [expr]
    if len(held) == 1 and isinstance(held[0], ast.Constant) and held[0].value == entry.sentinel:
        return held[0]
    return None


def _names_the_sentinel(expr: str, entry: Default, ctx: FileContext) -> bool:
    """Is the suggested device a name that holds the sentinel (`device = "auto"`)? Passing it
    would change nothing."""
    return entry.sentinel is not None and expr.isidentifier() and _sentinel_held(ast.Name(id=expr), entry, ctx) is not None


def _hub_entry(node: ast.Call) -> Default | None:
    """`torch.hub.load("ultralytics/yolov5", model)`: the repository's entry points take
    `device` and default it to None, which its select_device turns into cuda:0 (the catalog's
    `hub` table lists such repositories)."""
    repo = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "repo_or_dir"), None)
    if not (isinstance(repo, ast.Constant) and isinstance(repo.value, str)):
        return None
    name = repo.value.split(":", 1)[0]
    for entry in catalog.api("DL012", "hub", []):
        if name in entry["repos"]:
            return Default(
                "torch.hub.load", entry.get("param", "device"), None, entry["default"], entry["library"],
                none_means_cuda=True, means=GPU0,
            )
    return None


def _index_at_hand(node: ast.Call, entry: Default, ctx: FileContext) -> str | None:
    """The GPU index the code has for this call: one in scope (`device_id`, `args.gpu_id`), or
    the field of a parameter whose annotated class keeps it (`crop_cfg: CropConfig` ->
    `crop_cfg.device_id`); never one read from what this very call builds."""
    built = {t.id for t in getattr(ctx.parent, "targets", []) if isinstance(t, ast.Name)}
    index = ctx.suggest_index(node)
    if index is not None and index.split(".")[0] not in built:
        return index
    function = ctx.scope.function
    passed = {a.id for a in [*node.args, *(k.value for k in node.keywords)] if isinstance(a, ast.Name)}
    params = sorted(function.params.items() if function is not None else (), key=lambda item: item[0] not in passed)
    for name, arg in params:  # the call's own arguments first
        annotation = ctx.qualname(arg.annotation) if arg.annotation is not None else None
        if annotation and any(d.index and d.param == entry.param for d in ctx.index.cuda_defaults(annotation)):
            return f"{name}.{entry.param}"
    return None


def _is_literal(text: str) -> bool:
    """A default that can be written in another module as it is (no name to import)."""
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return True


CHECK = ReliesOnCudaDefault()
