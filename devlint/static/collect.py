"""Collecting one file's index facts (index.py holds them and answers the checks).

Collection asks the file's context (placement, the other runtimes' kernels), so it sits
above the context in the layers, while the index it fills sits below: the context and
the checks only ever read a built ProjectIndex.
"""

from __future__ import annotations

import ast
import os

from devlint import catalog
from devlint.static import defaults as definitions
from devlint.static import engine, extensions, placement, runtimes, values
from devlint.static.context import FileContext
from devlint.static.index import (
    EXTENSION_GUARD,
    Extension,
    FileFacts,
    Kernel,
    TypeSink,
    TypeStringCall,
    _catalog_names,
    _def_qualname,
    _process_group_inits,
    _setup_roots,
    class_qualname,
    qualname_in,
    selecting_setups,
)
from devlint.static.names import argument
from devlint.static.names import qualname as qualname_of
from devlint.static.scope import Scope, _sets_visible_devices, _shallow


def _definitions(outer: Scope):
    """(node, the scope it is defined in) for each function and class the index can name:
    at module level (under `if`/`try` too) and in module-level classes, in source order."""
    for node in _shallow(outer.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node, outer
            if isinstance(node, ast.ClassDef) and outer.kind == "module":
                yield from _definitions(outer.child(node))


def _collect_definitions(ctx: FileContext, facts: FileFacts) -> None:
    """Device defaults of the file's named definitions. Only the module's and its classes'
    own statements are walked, and a function's body only when its signature has a device
    parameter or `**kwargs`: most of a file is never visited."""
    text = ctx.source.text
    summarise = ("'cuda" in text or '"cuda' in text) and "return" in text
    for node, outer in _definitions(ctx.module_scope):
        if isinstance(node, ast.ClassDef):
            qualname = class_qualname(outer.child(node))
            if qualname is not None:
                _note_definition(facts, qualname)
                if "set_device" in text:
                    _note_worker(facts, qualname, outer.child(node))
                for base in node.bases:
                    named = qualname_of(base, outer)
                    if named:
                        facts.bases.append((qualname, named))
                init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
                if node.bases and init is None:
                    facts.inherits_init.append(qualname)
                elif node.bases and _passes_kwargs_to_base(init):
                    args = init.args
                    named = tuple(a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs])
                    facts.kwargs_to_base.append((qualname, named))
                facts.defaults.extend(definitions.of_dataclass(node, qualname, f"{ctx.filename}:{node.lineno}"))
            continue
        qualname = qualname_in(outer, node)
        if qualname is None:
            continue
        _note_definition(facts, qualname)
        if outer.kind in ("module", "class"):
            _note_setup(facts, qualname, node, outer, "set_device" in text)
        if outer.kind == "module" and summarise and _may_return_a_device(ctx.text(node)):
            returned = values.returned_when_omitted(node, outer)
            if returned.current or returned.gpu0:
                facts.returns.append((qualname, returned.kind.name, returned.index))
        may_default = definitions.may_default(node)
        constructor = outer.kind == "class" and node.name == "__init__"
        if (outer.kind == "module" or constructor) and (may_default or _places_by_parameter(ctx.text(node))):
            for param in placement.device_parameters(ctx, node, method=constructor):
                facts.device_params.append((qualname, param.name, param.position, param.first_element))
        if may_default:
            found = definitions.of_function(
                outer.child(node), qualname, f"{ctx.filename}:{node.lineno}", ctx.text,
            )
            facts.defaults.extend(found.defaults)
            facts.forwards.extend(found.forwards)
            facts.unused.extend(found.unused)


# Roots of calls that are never the project's own set-up (recorded setup_calls stay few).
_NOT_SETUP = frozenset({"torch", "os", "sys", "logging", "numpy", "np", "random", "time", "json", "warnings", "argparse", "math"})


def _note_setup(facts: FileFacts, qualname: str, node: ast.FunctionDef | ast.AsyncFunctionDef, outer: Scope, may_set: bool) -> None:
    """A module-level function's or method's part in making a GPU current: does it call
    `set_device` with other than a written 0 (`may_set`: the file's text mentions it), and
    which calls open its body (`cfg = setup(args)`, `self.init_ddp_connection(rank, n)`)? A
    method's calls are kept only when it sets the device itself: then a process group it
    opens through another method is selected (GeneFace's `_forward_nerf_task_ddp`)."""
    sets = may_set and any(
        isinstance(n, ast.Call) and qualname_of(n.func, outer) == "torch.cuda.set_device"
        and n.args and not (isinstance(n.args[0], ast.Constant) and n.args[0].value in (0, "cuda:0"))
        for n in _shallow(node.body)
    )
    if sets:
        facts.device_setters.append(qualname)
    method = outer.kind == "class"
    if method and not sets:
        return
    callees = []
    for statement in node.body:
        value = statement.value if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Call):
            func = value.func
            if method and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
                callee = f"{qualname.rsplit('.', 1)[0]}.{func.attr}"
            else:
                callee = qualname_of(func, outer)
            if callee and "." in callee and callee.split(".", 1)[0] not in _NOT_SETUP:
                callees.append(callee)
    if callees:
        facts.setup_calls.append((qualname, tuple(callees)))


def _places_by_parameter(source: str) -> bool:
    """A cheap test for a function whose device parameter has another name (ControlNet's
    `load_state_dict(ckpt_path, location='cpu')` -> `map_location=torch.device(location)`)."""
    return "map_location" in source or "torch.device(" in source


def _may_return_a_device(source: str) -> bool:
    """A cheap test before a function's scope is built: it writes "cuda" and returns."""
    return ("'cuda" in source or '"cuda' in source) and "return " in source


def _note_worker(facts: FileFacts, qualname: str, cls: Scope) -> None:
    """A class one of whose methods (not `__init__`, which runs first) makes the object's
    own device current (`torch.cuda.set_device(self.device)`): a per-GPU worker, noted with
    the classes it builds into its attributes (`self.model_runner = ModelRunner(...)`),
    whose methods it calls after. A `set_device(gpu_idx)` of a parameter selects for one
    call (an mp.spawn target), not for the object."""
    methods = [n for n in cls.node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not any(m.name != "__init__" and _calls_set_device(m, cls) for m in methods):
        return
    owned = []
    for method in methods:
        scope = cls.child(method)
        for node in _shallow(method.body):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
                isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" for t in node.targets
            ):
                built = qualname_of(node.value.func, scope)
                if built and not built.startswith("torch") and built not in owned:
                    owned.append(built)
    facts.workers.append((qualname, tuple(owned)))


def _calls_set_device(method: ast.FunctionDef | ast.AsyncFunctionDef, cls: Scope) -> bool:
    scope = cls.child(method)
    return any(
        isinstance(node, ast.Call) and qualname_of(node.func, scope) == "torch.cuda.set_device"
        and node.args and isinstance(node.args[0], ast.Attribute)
        and isinstance(node.args[0].value, ast.Name) and node.args[0].value.id == "self"
        for node in _shallow(method.body)
    )


def _passes_kwargs_to_base(init: ast.FunctionDef) -> bool:
    """Does `__init__` call `super().__init__(..., **kwargs)` with its own `**kwargs`?"""
    kwargs = init.args.kwarg
    if kwargs is None:
        return False
    for statement in init.body:
        call = statement.value if isinstance(statement, ast.Expr) else None
        if (
            isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__"
            and isinstance(call.func.value, ast.Call) and isinstance(call.func.value.func, ast.Name)
            and call.func.value.func.id == "super"
        ):
            return any(k.arg is None and isinstance(k.value, ast.Name) and k.value.id == kwargs.arg for k in call.keywords)
    return False


def _note_definition(facts: FileFacts, qualname: str) -> None:
    if qualname.rsplit(".", 1)[-1] in _catalog_names() and qualname not in facts.definitions:
        facts.definitions.append(qualname)


class _CallCollector:
    """Engine visitors that record the facts of calls: process groups and type strings."""

    code = "index"

    def __init__(self, facts: FileFacts):
        self.facts = facts

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
        called = ctx.qualname(func)
        if called in _process_group_inits():
            scope = ctx.scope.function or ctx.module_scope
            selected = any(
                line < node.lineno or (line > node.lineno and "barrier(" not in ctx.source.between(node.lineno, 0, line, 0))
                for line in scope.device_selected_at
            )
            self.facts.process_groups.append((f"{ctx.filename}:{node.lineno}", selected))
            helper = _def_qualname(ctx.scope.function) if ctx.scope.function is not None and not selected else None
            if helper:
                self.facts.process_group_functions.append((f"{ctx.filename}:{node.lineno}", helper))
        elif called in selecting_setups():
            self.facts.process_groups.append((f"{ctx.filename}:{node.lineno}", True))
        if isinstance(func, ast.Attribute) and func.attr == "type" and len(node.args) == 1:
            param = node.args[0]
            function = ctx.scope.function
            if (
                isinstance(param, ast.Name)
                and function is not None
                and param.id in function.params
                and placement.cpu_rooted(ctx, func.value) is not None
            ):
                qualname = _def_qualname(function)
                if qualname:
                    span = ctx.def_span(function.node)
                    self.facts.type_sinks.append(
                        TypeSink(
                            qualname, param.id, definitions.position(function, param.id), ctx.filename,
                            (*span.start, *span.end), ctx.threadable(function),
                        )
                    )
        callee = None
        for i, arg in enumerate(node.args):
            if placement.type_string_of(arg) is not None:
                callee = callee or ctx.qualname(func)
                if callee:
                    self.facts.type_string_calls.append(TypeStringCall(callee, i, None, f"{ctx.filename}:{node.lineno}"))
        for kw in node.keywords:
            if kw.arg and placement.type_string_of(kw.value) is not None:
                callee = callee or ctx.qualname(func)
                if callee:
                    self.facts.type_string_calls.append(TypeStringCall(callee, None, kw.arg, f"{ctx.filename}:{node.lineno}"))


class _SaveCollector:
    """The files the project writes with torch.save, and whether from the CPU."""

    code = "index"

    def __init__(self, facts: FileFacts):
        self.facts = facts

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if len(node.args) < 2 or ctx.qualname(node.func) != "torch.save":
            return
        key = placement.path_key(node.args[1])
        if key is not None:
            self.facts.saves.append((key, placement.saved_from_cpu(node.args[0], ctx.scope)))


class _RuntimeCollector:
    """Kernels and CUDA_VISIBLE_DEVICES setters, for the rules on other GPU runtimes."""

    code = "index"

    def __init__(self, facts: FileFacts):
        self.facts = facts

    def visit_FunctionDef(self, node: ast.FunctionDef, ctx: FileContext) -> None:
        runtime = runtimes.kernel_runtime(node, ctx.scope)
        qualname = _def_qualname(ctx.scope.child(node)) if runtime else None
        if qualname:
            self.facts.kernels.append(Kernel(qualname, runtime))

    def visit_Assign(self, node: ast.Assign, ctx: FileContext) -> None:
        function = ctx.scope.function
        if function is not None and any(_sets_visible_devices(t) for t in node.targets):
            qualname = _def_qualname(function)
            if qualname and qualname not in self.facts.maskers:
                self.facts.maskers.append(qualname)


class _ProviderCollector:
    """Module globals assigned every available ONNX Runtime provider, for DL014 in the
    modules that make sessions with them (`roop.globals.execution_providers = ...`)."""

    code = "index"

    def __init__(self, facts: FileFacts):
        self.facts = facts

    def visit_Assign(self, node: ast.Assign, ctx: FileContext) -> None:
        if not runtimes.every_available_provider(node.value, ctx.scope):
            return
        for target in node.targets:
            if isinstance(target, ast.Attribute):
                qualname = ctx.qualname(target)  # an imported module's global
                if qualname is None or qualname.split(".", 1)[0] in ("self", "cls"):
                    continue
            elif isinstance(target, ast.Name) and ctx.scope.function is None:
                qualname = ctx.global_name(target.id)
            else:
                continue
            if qualname not in self.facts.provider_lists:
                self.facts.provider_lists.append(qualname)


_EXTENSION_CLASSES = frozenset({
    "torch.utils.cpp_extension.CUDAExtension", "torch.utils.cpp_extension.CppExtension",
})


class _ExtensionCollector:
    """C++/CUDA extensions, for DL027: those a setup script builds, and names bound to an
    extension `cpp_extension.load(...)`/`load_inline(...)` builds (other modules import them)."""

    code = "index"

    def __init__(self, facts: FileFacts):
        self.facts = facts

    def visit_Assign(self, node: ast.Assign, ctx: FileContext) -> None:
        if not (len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)):
            return
        builder = catalog.api("DL027", "builders", {}).get(ctx.qualname(node.value.func) or "")
        if builder is None:
            return
        name = ctx.global_name(node.targets[0].id)
        directory = os.path.dirname(ctx.filename) or "."
        call = node.value
        if builder.get("files"):
            listed = [extensions.listed_paths(argument(call, p, i), ctx.scope) for p, i in builder["files"].items()]
            if all(paths for paths in listed):  # sources not written out are not judged
                self.facts.extensions.append(Extension(name, directory, tuple(p for paths in listed for p in paths)))
        texts = {p: extensions.listed_strings(argument(call, p, i), ctx.scope) for p, i in builder.get("inline", {}).items()}
        if any(texts.values()) and not any(EXTENSION_GUARD.search(t) for ts in texts.values() for t in ts):
            self.facts.extensions.append(Extension(name, directory, inline=", ".join(f"`{p}`" for p, ts in texts.items() if ts)))

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        if not self._builds_extension(node.func, ctx):
            return
        name = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return
        listed = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "sources"), None)
        sources = tuple(extensions.listed_paths(listed, ctx.scope) or ())
        directory = os.path.dirname(ctx.filename) or "."
        self.facts.extensions.append(Extension(name.value, directory, sources))

    def _builds_extension(self, func: ast.expr, ctx: FileContext) -> bool:
        """`CUDAExtension(...)`, or `extension(...)` where `extension` is assigned one of the
        extension classes (a setup script that picks CppExtension or CUDAExtension)."""
        if ctx.qualname(func) in _EXTENSION_CLASSES:
            return True
        if isinstance(func, ast.Name):
            found = ctx.scope.lookup_values(func.id)
            values = list(found[1]) if found is not None else []
            values += [part for v in values if isinstance(v, ast.IfExp) for part in (v.body, v.orelse)]
            return any(ctx.qualname(v) in _EXTENSION_CLASSES for v in values if isinstance(v, (ast.Name, ast.Attribute)))
        return False


def collect(ctx: FileContext) -> FileFacts:
    """The facts of one file. The engine's walk of every node runs only for the files whose
    text can hold call or runtime facts; definitions need no walk (_collect_definitions)."""
    facts = FileFacts()
    _collect_definitions(ctx, facts)
    text = ctx.source.text
    walkers: list = []
    if ".type(" in text or "init_process_group" in text or any(root in text for root in _setup_roots()):
        walkers.append(_CallCollector(facts))
    if "torch.save(" in text:
        walkers.append(_SaveCollector(facts))
    if "triton" in text or "numba" in text or "CUDA_VISIBLE_DEVICES" in text:
        walkers.append(_RuntimeCollector(facts))
    if "CUDAExtension" in text or "CppExtension" in text or "cpp_extension" in text:
        walkers.append(_ExtensionCollector(facts))
    if "get_available_providers" in text:
        walkers.append(_ProviderCollector(facts))
    if walkers:
        engine.run(ctx, walkers)
    return facts
