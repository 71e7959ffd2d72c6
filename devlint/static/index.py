"""The project-wide facts a single file cannot tell: which callables default to CUDA.

DL012 flags a call that omits `device` when the callee's `device` defaults to an
unindexed CUDA device: a definition anywhere in the checked project (found here)
or a known library (listed in the catalog). DL003 flags `.type(param)` when some
caller passes a CUDA type string (`x.type()`) into `param`. The rules on other GPU
runtimes (DL014-DL018) ask which functions are GPU kernels (`@triton.jit`) and which
set CUDA_VISIBLE_DEVICES, wherever in the project they are defined.

Facts are collected per file (`collect`), so they can be cached with the file, and
combined into a ProjectIndex before the checks run.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field

from devlint import catalog
from devlint.findings import Span
from devlint.static import devices, placement
from devlint.static.context import FileContext
from devlint.static.devices import Kind
from devlint.static.scope import Scope, _sets_visible_devices, _shallow

# Files worth collecting from: a `device` defaulting to "cuda" (or to None, in a file that
# writes "cuda" somewhere to turn it into), a `.type(...)` call, a GPU kernel, or a
# CUDA_VISIBLE_DEVICES assignment.
_CUDA_DEFAULT = re.compile(r"device\s*(?::[^=\n]*)?=\s*(?:['\"]cuda|torch\.device\(\s*['\"]cuda)")
_NONE_DEFAULT = re.compile(r"device\s*(?::[^=\n]*)?=\s*None")
_CUDA_LITERAL = re.compile(r"['\"]cuda['\"]")
_SETS_VISIBLE_DEVICES = re.compile(r"environ\[\s*['\"]CUDA_VISIBLE_DEVICES['\"]\s*\]\s*=(?!=)")


def worth_collecting(text: str) -> bool:
    if ".type(" in text or "@triton" in text or "cuda.jit" in text:
        return True
    if "CUDA_VISIBLE_DEVICES" in text and _SETS_VISIBLE_DEVICES.search(text):
        return True
    if "cuda" not in text or "device" not in text:  # cheap substring tests first
        return False
    return bool(_CUDA_DEFAULT.search(text) or (_NONE_DEFAULT.search(text) and _CUDA_LITERAL.search(text)))


@dataclass(frozen=True)
class CudaDefault:
    qualname: str
    param: str
    position: int | None  # positional index at call sites (self excluded); None: keyword-only
    default: str  # how the default reads, e.g. "'cuda'" or "None -> 'cuda'"
    where: str  # "path:line" of the definition, or the library's name
    none_means_cuda: bool = False
    also: tuple[str, ...] = ()  # other parameters that also choose the device (gpu_id)


@dataclass(frozen=True)
class TypeSink:
    """A helper that builds a tensor and calls `.type(param)` on it: a CUDA type string
    passed in lands it on the current device."""

    qualname: str
    param: str
    position: int | None
    filename: str = ""
    span: tuple[int, int, int, int] = (0, 0, 0, 0)  # its `def` to the end of its name
    threadable: str | None = None  # why it cannot take a device parameter, if it cannot

    def target(self) -> Span:
        return Span(self.filename, (self.span[0], self.span[1]), (self.span[2], self.span[3]))


@dataclass(frozen=True)
class TypeStringCall:
    callee: str
    position: int | None
    keyword: str | None
    where: str


@dataclass(frozen=True)
class Kernel:
    """A function launched as `kernel[grid](...)` on another runtime's current device:
    decorated with `@triton.jit` (or `@numba.cuda.jit`), or a factory that returns one."""

    qualname: str
    runtime: str  # "triton" or "numba"


@dataclass
class FileFacts:
    defaults: list[CudaDefault] = field(default_factory=list)
    type_sinks: list[TypeSink] = field(default_factory=list)
    type_string_calls: list[TypeStringCall] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    maskers: list[str] = field(default_factory=list)  # functions that set CUDA_VISIBLE_DEVICES


def class_qualname(scope: Scope) -> str | None:
    """module.Class for a class defined at module level."""
    if scope.kind != "class" or scope.parent is None or scope.parent.kind != "module":
        return None
    return f"{scope.module_name}.{scope.node.name}" if scope.module_name else scope.node.name


def _def_qualname(scope: Scope) -> str | None:
    """module.func or module.Class for a function at module level or a class's __init__."""
    node = scope.node
    parent = scope.parent
    if parent is None or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    prefix = f"{scope.module_name}." if scope.module_name else ""
    if parent.kind == "module":
        return prefix + node.name
    if parent.kind == "class" and parent.parent is not None and parent.parent.kind == "module":
        if node.name == "__init__":
            return prefix + parent.node.name
        return f"{prefix}{parent.node.name}.{node.name}"
    return None


def _position(scope: Scope, param: str) -> int | None:
    args = scope.node.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    if scope.parent is not None and scope.parent.kind == "class" and positional[:1] in (["self"], ["cls"]):
        positional = positional[1:]
    return positional.index(param) if param in positional else None


def _none_becomes_cuda(scope: Scope, param: str) -> bool:
    """`device=None` that the body turns into an unindexed CUDA device."""
    for child in _shallow(scope.body):
        if isinstance(child, (ast.Assign, ast.AnnAssign)) and child.value is not None:
            targets = child.targets if isinstance(child, ast.Assign) else [child.target]
            named = any(
                (isinstance(t, ast.Name) and t.id == param)
                or (isinstance(t, ast.Attribute) and t.attr in (param, f"_{param}"))
                for t in targets
            )
            if named and devices.classify(child.value, scope).kind is Kind.CURRENT:
                return True
    return False


class _Collector:
    """Engine visitors that record facts instead of findings."""

    code = "index"

    def __init__(self, facts: FileFacts):
        self.facts = facts

    def visit_FunctionDef(self, node: ast.FunctionDef, ctx: FileContext) -> None:
        scope = ctx.scope.child(node)
        qualname = _def_qualname(scope)
        if qualname is None:
            return
        default = scope.defaults.get("device")
        if default is not None:
            kind = devices.classify(default, scope).kind
            none = isinstance(default, ast.Constant) and default.value is None
            if kind is Kind.CURRENT or (none and _none_becomes_cuda(scope, "device")):
                shown = ctx.text(default) + (" -> 'cuda'" if none else "")
                self.facts.defaults.append(
                    CudaDefault(qualname, "device", _position(scope, "device"), shown, f"{ctx.filename}:{node.lineno}", none)
                )

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        func = node.func
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
                            qualname, param.id, _position(function, param.id), ctx.filename,
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


class _RuntimeCollector:
    """Kernels and CUDA_VISIBLE_DEVICES setters, for the rules on other GPU runtimes."""

    code = "index"

    def __init__(self, facts: FileFacts):
        self.facts = facts

    def visit_FunctionDef(self, node: ast.FunctionDef, ctx: FileContext) -> None:
        from devlint.static import runtimes

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


def collect(ctx: FileContext) -> FileFacts:
    from devlint.static import engine

    facts = FileFacts()
    engine.run(ctx, [_Collector(facts), _RuntimeCollector(facts)])
    return facts


def _library_defaults() -> list[CudaDefault]:
    entries = []
    for entry in catalog.api("DL012", "libraries", []):
        for name in entry["names"]:
            entries.append(
                CudaDefault(
                    qualname=name,
                    param=entry.get("param", "device"),
                    position=entry.get("position"),
                    default=entry["default"],
                    where=entry["library"],
                    none_means_cuda=entry["default"].startswith("None"),
                    also=tuple(entry.get("also", ())),
                )
            )
    return entries


def _matches(call: str, definition: str) -> bool:
    """A call's qualified name and a definition's, allowing for different import roots
    (`face3d.util.FAN` vs `src.face3d.util.FAN`)."""
    return call == definition or definition.endswith("." + call) or call.endswith("." + definition)


class ProjectIndex:
    def __init__(self, facts: list[FileFacts] = ()):
        self._recorded: set[str] | None = None
        self._defaults: dict[str, list[CudaDefault]] = {}
        for entry in _library_defaults() + [d for f in facts for d in f.defaults]:
            self._defaults.setdefault(entry.qualname.rsplit(".", 1)[-1], []).append(entry)
        self._sinks = {(s.qualname, s.param): s for f in facts for s in f.type_sinks}
        self._sink_names = {}
        for sink in self._sinks.values():
            self._sink_names.setdefault(sink.qualname.rsplit(".", 1)[-1], []).append(sink)
        self._type_callers: dict[tuple[str, str], str] = {}
        for f in facts:
            for call in f.type_string_calls:
                for sink in self._sink_names.get(call.callee.rsplit(".", 1)[-1], []):
                    if _matches(call.callee, sink.qualname) and (
                        call.keyword == sink.param or (call.position is not None and call.position == sink.position)
                    ):
                        self._type_callers.setdefault((sink.qualname, sink.param), call.where)
        self._kernels: dict[str, list[Kernel]] = {}
        for kernel in (k for f in facts for k in f.kernels):
            self._kernels.setdefault(kernel.qualname.rsplit(".", 1)[-1], []).append(kernel)
        self._maskers = sorted({m for f in facts for m in f.maskers})

    def callable_names(self) -> set[str]:
        """Last components of every callable with a CUDA default (`GFPGANer`, `init_detection_model`)."""
        return set(self._defaults)

    def qualname_of(self, scope: Scope) -> str | None:
        return _def_qualname(scope)

    # --- lookups, recorded so that a cached result knows what it depended on ---------

    def start_recording(self) -> None:
        self._recorded: set[str] | None = set()

    def recorded(self) -> dict[str, str]:
        return {dep: self.digest(dep) for dep in sorted(self._recorded or ())}

    def _note(self, dep: str) -> None:
        if getattr(self, "_recorded", None) is not None:
            self._recorded.add(dep)

    def digest(self, dep: str) -> str:
        """What the index holds for one lookup key, hashed."""
        kind, _, name = dep.partition(":")
        if kind == "default":
            held = sorted(repr(d) for d in self._defaults.get(name, []))
        elif kind == "sinks":
            held = sorted(repr(s) for s in self._sink_names.get(name, []))
        elif kind == "kernel":
            held = sorted(repr(k) for k in self._kernels.get(name, []))
        elif kind == "maskers":
            held = self._maskers
        else:
            qualname, _, param = name.rpartition(":")
            held = [repr(self._type_callers.get((qualname, param)))]
        return hashlib.blake2b("|".join(held).encode(), digest_size=8).hexdigest()

    def cuda_default(self, qualname: str | None) -> CudaDefault | None:
        if not qualname:
            return None
        last = qualname.rsplit(".", 1)[-1]
        self._note(f"default:{last}")
        candidates = [d for d in self._defaults.get(last, []) if _matches(qualname, d.qualname)]
        return candidates[0] if len(candidates) == 1 else None

    def type_sinks(self, qualname: str | None) -> list[TypeSink]:
        """The type-string helpers a call of `qualname` may reach."""
        if not qualname:
            return []
        last = qualname.rsplit(".", 1)[-1]
        self._note(f"sinks:{last}")
        return [s for s in self._sink_names.get(last, []) if _matches(qualname, s.qualname)]

    def type_string_caller(self, qualname: str | None, param: str) -> str | None:
        if not qualname:
            return None
        self._note(f"type:{qualname}:{param}")
        return self._type_callers.get((qualname, param))

    def kernel_runtime(self, qualname: str | None) -> str | None:
        """The runtime a kernel defined in the project launches on ("triton", "numba")."""
        if not qualname:
            return None
        last = qualname.rsplit(".", 1)[-1]
        self._note(f"kernel:{last}")
        found = {k.runtime for k in self._kernels.get(last, []) if _matches(qualname, k.qualname)}
        return found.pop() if len(found) == 1 else None

    def kernel_names(self) -> set[str]:
        """Last components of every kernel and kernel factory (`dtw_kernel`, `median_kernel`)."""
        return set(self._kernels)

    def maskers(self) -> list[str]:
        """Qualified names of the project's functions that set CUDA_VISIBLE_DEVICES."""
        self._note("maskers:")
        return self._maskers
