"""DL014: an ONNX Runtime GPU provider, IOBinding or OrtValue on "cuda" without `device_id`."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.findings import Edit, Fix
from devlint.static import guards, runtimes, values
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument, keyword, passes_unknown_args

_SKIP = "skip"  # a role that says nothing is requested here (a default, a return value, a test)


@functools.lru_cache(maxsize=1)
def _providers() -> frozenset[str]:
    return frozenset(catalog.api("DL014", "providers", []))


@functools.lru_cache(maxsize=1)
def _device_calls() -> dict[str, dict]:
    return {entry["method"]: entry for entry in catalog.api("DL014", "device_calls", [])}


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _has_device_id(options: ast.Dict) -> bool:
    """Does the options dict set device_id (or unpack other options that may)?"""
    return any(key is None or (_is_str(key) and key.value == "device_id") for key in options.keys)


class OnnxruntimeWithoutDeviceId(Check):
    code = "DL014"

    def wanted(self, ctx: FileContext) -> bool:
        if runtimes.mentions(ctx, "ExecutionProvider", "onnxruntime", "OrtValue", "io_binding"):
            return True
        return any(name in ctx.source.text for name in ctx.index.provider_list_names())

    def _stored_elsewhere(self, value: ast.expr, ctx: FileContext) -> bool:
        """`providers=roop.globals.execution_providers`, a module global another module of
        the project assigned every available provider (the project index holds those)."""
        return isinstance(value, (ast.Name, ast.Attribute)) and ctx.index.holds_every_provider(ctx.qualname(value))

    def visit_Constant(self, node: ast.Constant, ctx: FileContext) -> None:
        if type(node.value) is not str or node.value not in _providers():
            return
        verdict = self._provider_options(node, ctx)
        if verdict is _SKIP or runtimes.devices_masked(ctx):
            return
        if guards.only_when(ctx.path_to(node), guards.says_chose_current, lambda test: False):
            return  # chosen only when the program was given the index-less "cuda" itself, as DL001/DL002 judge it
        message = (
            f"`{ctx.text(node)}` without a `device_id` option runs the ONNX Runtime session on GPU 0 "
            "(the option defaults to 0), whatever device the program was told to use"
        )
        ctx.report(self.code, node, message, self._provider_fix(node, verdict, ctx))

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        self._providers_built_elsewhere(node, ctx)
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr not in _device_calls():
            return
        if not runtimes.mentions(ctx, "onnxruntime", "OrtValue", "io_binding"):
            return
        entry = _device_calls()[func.attr]
        device_type = argument(node, "device_type", entry["device_type"])
        if not (_is_str(device_type) and device_type.value in catalog.api(self.code, "device_types", [])):
            return
        if argument(node, "device_id", entry["device_id"]) is not None or passes_unknown_args(node):
            return
        if runtimes.devices_masked(ctx):
            return
        message = (
            f"`{func.attr}(..., {ctx.text(device_type)})` without `device_id` puts the data on GPU 0 "
            "(device_id defaults to 0), whatever device the program was told to use"
        )
        index = runtimes.gpu_index(ctx, node)
        if index is None:
            fix = ctx.display_only(self.code, "pass `device_id=` with the GPU index the program was told to use")
        else:
            fix = ctx.fix(
                self.code, f"Pass `device_id={index.expr}`: {index.why}", ctx.add_keyword(node, f"device_id={index.expr}"), *index.edits
            )
        ctx.report(self.code, node, message, fix)

    # --- where the provider name goes ----------------------------------------------

    def _provider_options(self, node: ast.Constant, ctx: FileContext):
        """The options dict to add device_id to (an ast.Dict), None to pass the provider as
        `(name, {"device_id": i})`, "add" to give it options, or _SKIP when no session on
        GPU 0 is requested here."""
        element, parent = _element(node, ctx)
        if isinstance(parent, ast.Tuple) and len(parent.elts) == 2 and parent.elts[0] is element and not _is_str(parent.elts[1]):
            return _missing_device_id(parent.elts[1])  # ("CUDAExecutionProvider", {...})
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute):
            method = parent.func.attr
            if method == "add_provider" and parent.args and parent.args[0] is element:  # SessionOptions.add_provider
                options = argument(parent, "provider_options", 1)
                return "add" if options is None else _missing_device_id(options)
            if method in ("append", "insert") and element in parent.args and isinstance(parent.func.value, ast.Name):
                return _SKIP if _options_passed(ctx, parent.func.value.id) else None
            return _SKIP
        if isinstance(parent, (ast.List, ast.Tuple)):
            return self._list_role(element, parent, ctx)
        return _SKIP

    def _list_role(self, node: ast.expr, listed: ast.expr, ctx: FileContext):
        """Where a provider list goes: handed to a call, or bound to a name that is."""
        child: ast.AST = listed
        ancestors = ctx.ancestors
        for depth in range(ancestors.index(listed) - 1, -1, -1):
            holder = ancestors[depth]
            if isinstance(holder, (ast.IfExp, ast.BoolOp, ast.BinOp, ast.Starred)):
                child = holder
                continue
            if isinstance(holder, ast.keyword):
                if holder.arg != "providers":
                    return None  # a provider list handed to a library (`FaceAnalysis(providers=...)`)
                return _option_at(listed.elts.index(node), _options_of(ancestors[depth - 1]), ctx)
            if isinstance(holder, ast.Call):
                if child not in holder.args:
                    return _SKIP
                if holder.args.index(child) == _provider_slot(holder):
                    return _option_at(listed.elts.index(node), _options_of(holder), ctx)
                return None
            if isinstance(holder, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and holder.value is child:
                targets = holder.targets if isinstance(holder, ast.Assign) else [holder.target]
                if len(targets) != 1 or not isinstance(targets[0], ast.Name):
                    return None
                options = [_options_of(call) for call in _calls_passing(ctx, targets[0].id)]
                options = [o for o in options if o is not None]
                return _option_at(listed.elts.index(node), options[0], ctx) if options else None
            return _SKIP  # a return value, a default, a comparison, a loop: nothing requested here
        return _SKIP

    def _providers_built_elsewhere(self, node: ast.Call, ctx: FileContext) -> None:
        """`InferenceSession(path, providers=self.providers)` where the list is a helper's return
        value (`get_providers()`), which the literal's own visit leaves alone (nothing is
        requested where a list is returned): judged here, where the session is made."""
        given = keyword(node, "providers")
        slot = _provider_slot(node)
        value = given.value if given is not None else (node.args[slot] if slot is not None and slot < len(node.args) else None)
        if value is None or isinstance(value, (ast.List, ast.Tuple)) or _options_of(node) is not None:
            return
        if (runtimes.every_available_provider(value, ctx.scope) or self._stored_elsewhere(value, ctx)) and not runtimes.devices_masked(ctx):
            message = (
                f"`{ctx.text(value)}` passes the providers this ONNX Runtime build has, without options: with "
                "onnxruntime-gpu that includes CUDAExecutionProvider (and TensorRT's) with no `device_id`, so the session "
                "runs on GPU 0, whatever device the program was told to use"
            )
            fix = ctx.display_only(
                self.code, 'pass the GPU provider with its options: `[("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]`',
            )
            ctx.report(self.code, node, message, fix)
            return
        for listed, _ in values.containers(value, ctx.scope):
            if not isinstance(listed, (ast.List, ast.Tuple)) or not _returned_value(listed, ctx):
                continue
            names = [e for e in listed.elts if _is_str(e) and e.value in _providers()]
            if names and not runtimes.devices_masked(ctx):
                message = (
                    f"`{ctx.text(value)}` holds {ctx.text(names[0])} (line {names[0].lineno}) without a `device_id` option: "
                    "the ONNX Runtime session runs on GPU 0, whatever device the program was told to use"
                )
                fix = ctx.display_only(self.code, 'give the provider its options where the list is built: `("CUDAExecutionProvider", {"device_id": index})`')
                ctx.report(self.code, node, message, fix)
                return

    # --- the fix ----------------------------------------------------------------------

    def _provider_fix(self, node: ast.Constant, options, ctx: FileContext) -> Fix:
        index = runtimes.gpu_index(ctx, node)
        quote = ctx.text(node)[0] if ctx.text(node)[:1] in ("'", '"') else '"'
        device_id = f"{quote}device_id{quote}"
        if index is None:
            return ctx.display_only(
                self.code,
                f"pass the provider as `({ctx.text(node)}, {{{device_id}: index}})` with the GPU index the program was told to use",
            )
        entry = f"{device_id}: {index.expr}"
        if isinstance(options, ast.Dict):
            if options.keys:
                edit = Edit(f"{entry}, ", ctx.start(options.keys[0]), ctx.start(options.keys[0]))
            else:
                edit = ctx.replace(options, f"{{{entry}}}")
            message = f"Add `{entry}` to the provider's options: {index.why}"
        elif options == "add":
            edit = ctx.insert_after(node, f", {{{entry}}}")
            message = f"Pass the options `{{{entry}}}`: {index.why}"
        else:
            new = f"({ctx.text(node)}, {{{entry}}})"
            edit = ctx.replace(node, new)
            message = f"Use `{new}`: {index.why}"
        return ctx.fix(self.code, message, edit, *index.edits)


def _element(node: ast.Constant, ctx: FileContext) -> tuple[ast.expr, ast.AST | None]:
    """The expression the provider name is chosen in (`"CUDA..." if ok else "CPU..."` as a
    whole), and what holds it."""
    element: ast.expr = node
    for holder in reversed(ctx.ancestors):
        if isinstance(holder, ast.IfExp) and holder.test is not element:
            element = holder
            continue
        return element, holder
    return element, None


def _missing_device_id(options: ast.expr):
    """The options dict when it lacks device_id; _SKIP when it has one or is built elsewhere."""
    return options if isinstance(options, ast.Dict) and not _has_device_id(options) else _SKIP


def _option_at(position: int, options: ast.expr | None, ctx: FileContext):
    """The `provider_options` entry for the provider at `position` of a parallel list."""
    if options is None:
        return None
    if isinstance(options, ast.Name):
        found = ctx.scope.lookup_values(options.id)
        values = found[1] if found else []
        options = values[0] if len(values) == 1 else None
    if not isinstance(options, (ast.List, ast.Tuple)) or position >= len(options.elts):
        return _SKIP
    entry = options.elts[position]
    if isinstance(entry, ast.Constant) and entry.value is None:
        return None
    return _missing_device_id(entry)


def _options_passed(ctx: FileContext, name: str) -> bool:
    return any(_options_of(call) is not None for call in _calls_passing(ctx, name))


def _returned_value(listed: ast.expr, ctx: FileContext) -> bool:
    """Is this list a function's return value (the literal's own visit skips those)?"""
    returns = ctx.memo("returned lists", lambda: {id(n.value) for n in ast.walk(ctx.tree) if isinstance(n, ast.Return) and n.value is not None})
    return id(listed) in returns


def _provider_slot(call: ast.Call) -> int | None:
    """The positional slot of `providers` in calls that take one there."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return catalog.api("DL014", "provider_positions", {}).get(name)


def _options_of(call: ast.Call) -> ast.expr | None:
    """The `provider_options` a session call passes (None: none)."""
    slot = _provider_slot(call)
    options = argument(call, "provider_options", slot + 1 if slot is not None else None)
    if options is None or (isinstance(options, ast.Constant) and options.value is None):
        return None
    return options


def _calls_passing(ctx: FileContext, name: str) -> list[ast.Call]:
    """Calls in this scope that pass `name` as their providers."""
    scope = ctx.scope.function or ctx.module_scope
    found = []
    for node in ast.walk(scope.node):
        if not isinstance(node, ast.Call):
            continue
        given = keyword(node, "providers")
        value = given.value if given is not None else None
        slot = _provider_slot(node)
        if value is None and slot is not None and slot < len(node.args):
            value = node.args[slot]
        if isinstance(value, ast.Name) and value.id == name:
            found.append(node)
    return found


CHECK = OnnxruntimeWithoutDeviceId()

