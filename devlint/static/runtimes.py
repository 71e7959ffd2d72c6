"""What the rules on GPU runtimes other than torch (DL014-DL019) ask of a file.

ONNX Runtime, TensorRT, TensorFlow, Triton, CuPy, numba.cuda, dlib and Paddle each pick a
GPU of their own, GPU 0 unless told otherwise, whatever torch device the program chose.
These helpers answer the questions those rules share: has the program already narrowed
every runtime to the chosen GPU (CUDA_VISIBLE_DEVICES), is the CUDA current device set
around this line, which kernel a `kernel[grid](...)` launch runs, which GPU index a fix
can write, and how to write a line before (or a `with` around) a statement.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from devlint.findings import Edit, Location
from devlint.static import names, options, values
from devlint.static.context import FileContext
from devlint.static.scope import Scope, _record_import, _sets_visible_devices

# Decorators that make a function a GPU kernel launched as `kernel[grid](...)`.
_KERNEL_DECORATORS = {"triton.jit": "triton", "triton.autotune": "triton", "triton.heuristics": "triton", "numba.cuda.jit": "numba"}
# Context managers and calls that make a device current for torch and every runtime that
# shares the CUDA runtime's current device (TensorRT, CuPy, dlib, Triton).
_TORCH_GUARDS = ("torch.cuda.device", "torch.cuda.device_of", "torch.cuda._DeviceGuard")
# Names that hold a GPU index by convention besides suggest.INDEX_NAMES: insightface's ctx_id.
_EXTRA_INDEX_NAMES = ("ctx_id",)


def mentions(ctx: FileContext, *words: str) -> bool:
    """Does the file's text contain one of `words`? Asked for every call a rule visits, so
    the text is searched once per file and set of words."""
    return ctx.memo(("runtimes: mentions", words), lambda: any(word in ctx.source.text for word in words))


def mentions_kernel(ctx: FileContext) -> bool:
    """Does the file name a kernel (or kernel factory) the project index knows?"""
    return ctx.memo("runtimes: mentions a kernel", lambda: any(name in ctx.source.text for name in ctx.index.kernel_names()))


def _decorator_runtime(decorator: ast.expr, scope: Scope) -> str | None:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return _KERNEL_DECORATORS.get(names.qualname(target, scope) or "")


def kernel_runtime(node: ast.FunctionDef | ast.AsyncFunctionDef, outer: Scope) -> str | None:
    """"triton"/"numba" when `node` (defined in `outer`) is a kernel, or a factory that
    defines one and returns it."""
    for decorator in node.decorator_list:
        runtime = _decorator_runtime(decorator, outer)
        if runtime:
            return runtime
    nested = [c for c in node.body if isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef)) and c.decorator_list]
    if not nested:
        return None
    returned = {n.value.id for n in ast.walk(node) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)}
    for child in nested:
        if child.name in returned:
            for decorator in child.decorator_list:
                runtime = _decorator_runtime(decorator, outer.child(node))
                if runtime:
                    return runtime
    return None


def launched_kernel(call: ast.Call, ctx: FileContext) -> tuple[str, str] | None:
    """(name, runtime) of the kernel that `kernel[grid](...)` launches, or None."""
    func = call.func
    if not isinstance(func, ast.Subscript):
        return None
    target = func.value
    shown = ctx.text(target)
    if isinstance(target, ast.Name):
        function = ctx.scope.function
        local = function.defs.get(target.id) if function is not None else None
        if isinstance(local, (ast.FunctionDef, ast.AsyncFunctionDef)):  # a kernel defined in this function
            runtime = kernel_runtime(local, function)
            return (shown, runtime) if runtime else None
        found = ctx.scope.lookup_values(target.id)
        if found is not None:
            values = found[1]
            runtimes = {_factory_runtime(v, ctx) for v in values}
            return (shown, runtimes.pop()) if len(runtimes) == 1 and None not in runtimes else None
    runtime = ctx.index.kernel_runtime(ctx.qualname(target))
    return (shown, runtime) if runtime else None


def _factory_runtime(value: ast.expr, ctx: FileContext) -> str | None:
    if not isinstance(value, ast.Call):
        return None
    return ctx.index.kernel_runtime(ctx.qualname(value.func))


# --- has the program chosen the GPU already? ---------------------------------------


def devices_masked(ctx: FileContext) -> bool:
    """Does this module narrow the visible GPUs to the chosen one: it sets
    CUDA_VISIBLE_DEVICES, or calls a project function that does (yolov5's
    `select_device`)? Every runtime then sees the chosen GPU as its GPU 0."""
    return ctx.memo("runtimes: devices masked", lambda: _masks(ctx))


def _masks(ctx: FileContext) -> bool:
    tree = ctx.tree
    if "CUDA_VISIBLE_DEVICES" in ctx.source.text:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(_sets_visible_devices(t) for t in node.targets):
                return True
    maskers = ctx.index.maskers()
    last_names = {m.rsplit(".", 1)[-1] for m in maskers}
    if not any(name in ctx.source.text for name in last_names):
        return False
    imported = Scope(node=tree, parent=None, module_name=ctx.module_name)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            _record_import(imported, node)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        parts = names.dotted(node.func)
        if not parts or parts[-1] not in last_names:
            continue
        head = imported.imports.get(parts[0]) or ctx.global_name(parts[0])
        called = ".".join([head, *parts[1:]])
        if any(called == m or m.endswith("." + called) or called.endswith("." + m) for m in maskers):
            return True
    return False


def current_device_set(ctx: FileContext, node: ast.AST) -> bool:
    """Is the CUDA current device chosen at `node`: `torch.cuda.set_device(i)` earlier in
    this scope, or inside `with torch.cuda.device(x)` / `device_of(x)`? Runtimes that work on
    the CUDA runtime's current device (TensorRT, CuPy, dlib, Triton) then follow it."""
    if ctx.device_selected_before(node):
        return True
    return any(_guards(item.context_expr, ctx) for item in with_items(ctx))


def _guards(expr: ast.expr, ctx: FileContext) -> bool:
    if not isinstance(expr, ast.Call) or ctx.qualname(expr.func) not in _TORCH_GUARDS or not expr.args:
        return False
    return not ctx.device(expr.args[0]).gpu0


def with_items(ctx: FileContext):
    """The items of every `with` statement around the node being visited."""
    for ancestor in ctx.ancestors:
        if isinstance(ancestor, (ast.With, ast.AsyncWith)):
            yield from ancestor.items


def selected_by(ctx: FileContext, node: ast.AST, selectors: list[str]) -> bool:
    """Does a call of one of `selectors` come before `node` in its function (or the module),
    or open a `with` around it (`with cp.cuda.Device(i):`, `cuda.select_device(i)`)?"""
    for item in with_items(ctx):
        expr = item.context_expr
        if isinstance(expr, ast.Call) and not (expr.args or expr.keywords):
            continue  # `cp.cuda.Device()` is the current device: no choice made
        target = expr.func if isinstance(expr, ast.Call) else expr
        if isinstance(target, ast.Subscript):  # numba's `with cuda.gpus[i]:`
            target = target.value
        if ctx.qualname(target) in selectors:
            return True
    scope = ctx.scope.function or ctx.module_scope
    lines = ctx.memo(f"runtimes: selections {id(scope.node)} {selectors}", lambda: _selection_lines(ctx, scope, selectors))
    return bool(lines) and lines[0] < node.lineno


def _selection_lines(ctx: FileContext, scope: Scope, selectors: list[str]) -> list[int]:
    """Lines of `scope` that call a selector, in order (names resolved from that scope)."""
    found = []
    for child in ast.walk(scope.node):
        if not isinstance(child, ast.Call):
            continue
        callee = _callee(child)
        chooses = child.args or child.keywords or callee is not child.func
        if chooses and names.qualname(callee, scope) in selectors:
            found.append(child.lineno)
    return sorted(found)


def _callee(call: ast.Call) -> ast.expr:
    """`cp.cuda.Device(1).use()` is a selection by `cp.cuda.Device` (when given an index)."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "use" and isinstance(func.value, ast.Call) and func.value.args:
        return func.value.func
    return func


def first_in_scope(ctx: FileContext, code: str) -> bool:
    """True once per function (or module level) and rule: a runtime's device is decided by
    the first call that reaches it, so one finding per function says where."""
    seen = ctx.memo(f"runtimes: reported {code}", set)
    scope = ctx.scope.function or ctx.module_scope
    if id(scope.node) in seen:
        return False
    seen.add(id(scope.node))
    return True


def in_tensorflow_class(ctx: FileContext) -> bool:
    """Code of a `tf.keras` layer or model runs under the device scope of the code that calls
    it: the device is decided where the model is built and called, not in its methods."""
    function = ctx.scope.function
    cls = function.enclosing_class if function is not None else None
    if cls is None:
        return False
    for base in cls.node.bases:
        name = names.qualname(base, cls.parent) if cls.parent is not None else None
        if name and name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            return True
    return False


# --- what a fix can write ----------------------------------------------------------


@dataclass(frozen=True)
class GpuIndex:
    expr: str  # e.g. "device_id", "args.gpu", "torch.device(device).index or 0"
    why: str
    edits: tuple[Edit, ...] = ()  # an `import torch` the expression needs
    simple: bool = True  # a name or attribute: safe inside any expression


def gpu_index(ctx: FileContext, node: ast.AST) -> GpuIndex | None:
    """The GPU index the program was told to use, as an expression at `node`: a GPU index in
    scope (`device_id`, `local_rank`, `args.gpu`), else the index of a torch device in scope
    (`torch.device(device).index or 0`: 0 for an unindexed "cuda", as before the fix)."""
    index = ctx.suggest_index(node)
    if index is not None:
        return GpuIndex(index, "the GPU index the program was given")
    function = ctx.scope.function
    for name in _EXTRA_INDEX_NAMES:
        if function is not None and name in function.params:
            return GpuIndex(name, "the GPU index the program was given")
    device = ctx.suggest_device(node)
    source = options.source_of_device(node, ctx) if device is None else None
    if source is not None and not source.is_device:
        return GpuIndex(source.expr, source.why)
    expr = device.expr if device is not None else source.expr if source is not None else None
    if expr is None:
        return None
    torch, edits = ctx.torch_module()
    return GpuIndex(f"{torch}.device({expr}).index or 0", f"the index of `{expr}`", edits, simple=False)


def statement_of(ctx: FileContext) -> ast.stmt | None:
    """The innermost statement around the node being visited."""
    for ancestor in reversed(ctx.ancestors):
        if isinstance(ancestor, ast.stmt):
            return ancestor
    return None


def _indent(ctx: FileContext, stmt: ast.stmt) -> str | None:
    """The statement's indentation, or None when something precedes it on its line."""
    line = ctx.source.line(stmt.lineno)
    prefix = line[: ctx.start(stmt).column - 1]
    return prefix if not prefix.strip() else None


def insert_before(ctx: FileContext, stmt: ast.stmt, line: str) -> Edit | None:
    """An edit that puts `line` on its own line before `stmt`, at its indentation."""
    indent = _indent(ctx, stmt)
    if indent is None:
        return None
    where = Location(stmt.lineno, 1)
    return Edit(f"{indent}{line}{ctx.source.newline}", where, where)


def wrap_in_with(ctx: FileContext, stmt: ast.stmt, header: str) -> Edit | None:
    """An edit that puts `stmt` inside `with <header>:` (None where re-indenting its lines
    could change it: a multi-line string, or other code sharing its lines)."""
    indent = _indent(ctx, stmt)
    if indent is None:
        return None
    for node in ast.walk(stmt):
        if isinstance(node, (ast.Constant, ast.JoinedStr)) and node.lineno != node.end_lineno:
            return None
    last = ctx.source.line(stmt.end_lineno)
    rest = last[ctx.end(stmt).column - 1 :].strip()
    if rest and not rest.startswith("#"):
        return None
    unit = "\t" if indent.startswith("\t") else "    "
    rows = [ctx.source.line(row) for row in range(stmt.lineno, stmt.end_lineno + 1)]
    newline = ctx.source.newline
    body = newline.join(unit + row if row.strip() else row for row in rows)
    text = f"{indent}with {header}:{newline}{body}"
    return Edit(text, Location(stmt.lineno, 1), Location(stmt.end_lineno, len(last) + 1))


# Attributes only a tensor has among a kernel's arguments (scalars and constexprs have none).
_TENSOR_ATTRIBUTES = frozenset({"device", "stride", "shape", "dtype", "numel", "data_ptr", "is_cuda", "size", "contiguous", "element_size"})
_TENSOR_METHODS = frozenset({"to", "contiguous", "cuda", "clone", "view", "reshape", "float", "half", "flatten", "permute", "transpose", "type_as"})


def guard_fix(code: str, node: ast.Call, ctx: FileContext):
    """Run a kernel launch (or an extension op) under the device of its first tensor argument:
    `with torch.cuda.device(x.device):` around the statement (DL017, DL027)."""
    tensor = next((name for name in map(_root_name, node.args) if name is not None and _is_tensor(name, ctx)), None)
    if tensor is None:
        return ctx.display_only(code)
    torch, imports = ctx.torch_module()
    header = f"{torch}.cuda.device({tensor}.device)"
    statement = statement_of(ctx)
    edit = None
    if isinstance(statement, (ast.Expr, ast.Assign, ast.Return)) and statement.value is node:
        edit = wrap_in_with(ctx, statement, header)
    if edit is None:
        return ctx.display_only(code, f"run it under `with {header}:`")
    return ctx.fix(code, f"Run it under `with {header}:` (the device of its argument `{tensor}`)", edit, *imports)


def _root_name(arg: ast.expr) -> str | None:
    """`x` of `x`, `x.contiguous()`, `x.float().view(-1)`: the tensor an argument is made from."""
    while isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute):
        arg = arg.func.value
    return arg.id if isinstance(arg, ast.Name) else None


def _is_tensor(name: str, ctx: FileContext) -> bool:
    """Does the code show `name` to be a tensor: a tensor attribute read in this function,
    or a value from torch (`torch.empty_like(x)`, `x.to(...)`)? The fix names its device."""
    function = ctx.scope.function
    if function is None:
        return False
    if any(owner == name and attr in _TENSOR_ATTRIBUTES for owner, attr in function.attribute_uses):
        return True
    for value in function.assigns.get(name, []):
        if isinstance(value, ast.Call):
            callee = ctx.qualname(value.func) or ""
            method = value.func.attr if isinstance(value.func, ast.Attribute) else ""
            if callee.startswith("torch.") or method in _TENSOR_METHODS:
                return True
    return False


_AVAILABLE = "onnxruntime.get_available_providers"


def every_available_provider(expr: ast.expr, scope: Scope, depth: int = 0) -> bool:
    """Is the providers list `onnxruntime.get_available_providers()`, a comprehension over
    it, a name assigned one, or what one of the module's functions returns of those?"""
    if depth > 4:
        return False
    if isinstance(expr, ast.Call):
        if names.qualname(expr.func, scope) == _AVAILABLE:
            return True
        callee = values.module_function(expr.func, scope)
        if callee is None:
            return False
        inner = values.scope_of(callee, scope)
        return any(
            r.value is not None and every_available_provider(r.value, inner, depth + 1)
            for r in values.return_statements(callee)
        )
    if isinstance(expr, (ast.ListComp, ast.GeneratorExp)):  # a selection from the list (zip, enumerate...)
        return any(
            (isinstance(n, ast.Call) and names.qualname(n.func, scope) == _AVAILABLE)
            or (isinstance(n, ast.Name) and every_available_provider(n, scope, depth + 1))
            for generator in expr.generators for n in ast.walk(generator.iter)
        )
    if isinstance(expr, ast.Name):
        found = scope.lookup_values(expr.id)
        return found is not None and any(every_available_provider(v, found[0], depth + 1) for v in found[1])
    return False
