"""The project-wide facts a single file cannot tell: which callables default to CUDA.

DL012 flags a call that omits a device parameter whose default lands on the current
device or GPU0 (devlint/static/defaults.py reads the shapes): a definition anywhere in
the checked project (found here) or a known library (listed in the catalog). DL003 flags
`.type(param)` when some caller passes a CUDA type string (`x.type()`) into `param`. In
distributed code, whether the project selects the device before `init_process_group`. The
rules on other GPU runtimes (DL014-DL018) ask which functions are GPU kernels
(`@triton.jit`) and which set CUDA_VISIBLE_DEVICES, wherever in the project they are defined.

Facts are collected per file (`collect`), so they can be cached with the file, and
combined into a ProjectIndex before the checks run. Some facts are wanted from files the
first pass skipped (a caller passing its own default on to a helper, a class a default is
passed to): `wanted` names them, and the check pipeline collects those files too.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import re
from dataclasses import dataclass, field, replace

from devlint import catalog
from devlint.findings import Library, Span
from devlint.static.configs import ConfigBuild
from devlint.static.defaults import CURRENT_DEVICE, GPU0, Default, Forward
from devlint.static.scope import Scope


# Files worth collecting from: a `device` defaulting to "cuda" (or a device parameter to
# None or '', in a file that writes "cuda" or sets CUDA_VISIBLE_DEVICES somewhere), a GPU
# index defaulting to 0, a `.type(...)` call, a process group, a GPU kernel, or a
# CUDA_VISIBLE_DEVICES assignment.
_CUDA_DEFAULT = re.compile(r"device\s*(?::[^=\n]*)?=\s*(?:['\"]cuda|torch\.device\(\s*['\"]cuda)")
_FALSY_DEFAULT = re.compile(r"\b(?:device|dev|gpu|gpu_id|gpu_index|device_id|device_index|cuda_id)\s*(?::[^=\n]*)?=\s*(?:None|''|\"\")")
# A `def` whose parameters include a device-like one without a default (`def load(path, device)`).
_DEVICE_PARAMETER = re.compile(r"def\s+\w+\s*\([^)]*\b(?:device|dev|gpu_ids|gpu_id)\s*(?::[^,)=]*)?[,)]")
# `map_location=location` or `map_location=torch.device(location)`: a name, perhaps a parameter
# of another name than `device` that callers elsewhere may pass "cuda" (ControlNet's load_state_dict).
_MAP_LOCATION_NAME = re.compile(r"map_location\s*=\s*(?:torch\.device\(\s*)?[A-Za-z_]\w*\s*[,)]")
_INDEX_PARAMS = ("device_id", "gpu", "device_index", "cuda_id")  # substrings of every GPU index name
_ZERO_AFTER_NAME = re.compile(r"\w*['\"]?\s*(?::[^=\n,)]*)?[=,]\s*0\b")
_SETS_VISIBLE_DEVICES = re.compile(r"environ\[\s*['\"]CUDA_VISIBLE_DEVICES['\"]\s*\]\s*=(?!=)")


# What a guarded extension writes: c10's guards, `device_of`, or setting the device by hand.
EXTENSION_GUARD = re.compile(r"CUDAGuard|DeviceGuard|device_of\s*\(|set_device\s*\(|cudaSetDevice\s*\(")
_SOURCE_SUFFIXES = (".cpp", ".cc", ".cxx", ".cu", ".cuh", ".h", ".hpp")
_MAX_SOURCES = 300


def _extension_sources(extension: Extension, directory: str) -> list[str]:
    """The C++/CUDA files of an extension: its literal sources, else every such file under
    its setup script's directory (build output and hidden directories left out)."""
    if extension.sources:
        return [os.path.join(directory, s) for s in extension.sources if s.endswith(_SOURCE_SUFFIXES)]
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("build", "dist", "__pycache__"))
        found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(_SOURCE_SUFFIXES))
        if len(found) > _MAX_SOURCES:
            return []
    return found


def read_source(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(2_000_000)
    except OSError:
        return None


def _file_digest(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.blake2b(handle.read(), digest_size=8).hexdigest()
    except OSError:
        return "missing"


def _index_defaults_to_zero(text: str) -> bool:
    """`device_id=0`, `gpu_id: int = 0`, `kwargs.get("device_id", 0)`: looked for after each
    occurrence of a GPU index name (a regex starting with the names is far slower)."""
    for name in _INDEX_PARAMS:
        start = text.find(name)
        while start != -1:
            if _ZERO_AFTER_NAME.match(text, start + len(name)):
                return True
            start = text.find(name, start + 1)
    return False


def worth_collecting(text: str, module: str = "") -> bool:
    """Can this file (its text, its dotted module name) hold facts the index needs?"""
    return catalog_module(module) or text_worth_collecting(text)


def text_worth_collecting(text: str) -> bool:
    """Can a file with this text hold facts the index needs? (A file the catalog describes,
    `catalog_module`, is collected whatever its text.) Cached with the file's content."""
    if ".type(" in text or "init_process_group" in text or "DataParallel" in text or "torch.save(" in text:
        return True
    if any(root in text for root in _setup_roots()):
        return True
    if "LightningLite" in text or "Fabric" in text or "LightningModule" in text:
        return True  # a subclass of a launcher over the GPUs (DL007) is known by its base
    if "@triton" in text or "cuda.jit" in text:
        return True
    if "CUDAExtension" in text or "CppExtension" in text or "cpp_extension" in text:
        return True
    if "get_available_providers" in text:
        return True  # a module global of providers other modules' sessions use
    if "set_device(" in text:
        return True  # a per-GPU worker class (FileFacts.workers), or a function that makes a GPU current
    if ("'cuda" in text or '"cuda' in text) and "return" in text:
        return True  # a helper that returns a device: summarised for other modules' calls
    if "CUDA_VISIBLE_DEVICES" in text and _SETS_VISIBLE_DEVICES.search(text):
        return True
    if _index_defaults_to_zero(text):
        return True
    if _DEVICE_PARAMETER.search(text) or ("map_location" in text and _MAP_LOCATION_NAME.search(text)):
        return True  # a function that may use a parameter as a device: callers elsewhere may pass it "cuda"
    if "cuda" not in text and "CUDA" not in text:  # cheap substring tests first
        return False
    if "device" in text and _CUDA_DEFAULT.search(text):
        return True
    return ("'cuda" in text or '"cuda' in text or "CUDA_VISIBLE_DEVICES" in text) and bool(_FALSY_DEFAULT.search(text))




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
class Extension:
    """A C++/CUDA extension module: one a setup script builds (`CUDAExtension(name, sources)`),
    named by its import name, or a module-level name bound to `cpp_extension.load(...)` or
    `load_inline(...)` (`pkg.backend._backend`), which other modules import. The directory
    its source paths are relative to, and those paths when written out (for a setup script,
    else every C++/CUDA file under the directory stands for them)."""

    name: str
    directory: str
    sources: tuple[str, ...] = ()
    # For one built from source strings (`load_inline`) that open no guard: the parameters
    # that hold them, for the message (its sources were judged when the file was collected).
    inline: str = ""


@dataclass(frozen=True)
class Kernel:
    """A function launched as `kernel[grid](...)` on another runtime's current device:
    decorated with `@triton.jit` (or `@numba.cuda.jit`), or a factory that returns one."""

    qualname: str
    runtime: str  # "triton" or "numba"


@dataclass
class FileFacts:
    defaults: list[Default] = field(default_factory=list)
    # Qualified names of this file's definitions that share a name with a catalog entry
    # (`init_detection_model` in facexlib itself): such a call is judged by the definition.
    definitions: list[str] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    unused: list[tuple[str, str, int | None]] = field(default_factory=list)  # device parameters never read
    # Each `init_process_group` call ("path:line"), and whether its code selected the device
    # first (`torch.cuda.set_device(local_rank)`).
    process_groups: list[tuple[str, bool]] = field(default_factory=list)
    # ("path:line", function) for each of those its own function did not select the device
    # before: a helper (`distributed_init(args)`) that a caller may call after `set_device`.
    process_group_functions: list[tuple[str, str]] = field(default_factory=list)
    type_sinks: list[TypeSink] = field(default_factory=list)
    type_string_calls: list[TypeStringCall] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    maskers: list[str] = field(default_factory=list)  # functions that set CUDA_VISIBLE_DEVICES
    extensions: list[Extension] = field(default_factory=list)  # C++/CUDA extensions built by the project
    # (class, base) for each module-level class whose base is a device wrapper of the catalog
    # (`nn.DataParallel`) or another class: a subclass inherits what its parameters mean.
    bases: list[tuple[str, str]] = field(default_factory=list)
    # (file key, saved from the CPU) for each `torch.save(value, path)` whose path ends in a
    # written name (`"feats.pt"`): a load of that name gets back what was saved.
    saves: list[tuple[str, bool]] = field(default_factory=list)
    # (function, lattice point, GPU index) for each module-level function whose call without
    # arguments returns the current device or GPU0 (values.returned_when_omitted).
    returns: list[tuple[str, str, int | None]] = field(default_factory=list)
    # (function, parameter, position, first element) for each module-level function whose
    # body uses a parameter as a device (`net.to(dev)`, `net.to(gpu_ids[0])`): a call from
    # another module that passes it "cuda" or GPU0 chooses that device.
    device_params: list[tuple[str, str, int | None, bool]] = field(default_factory=list)
    # The names the file takes from other modules (libraries.imports.taken_names) and what its
    # re-exported names stand for (libraries.imports.aliases): filled where facts are kept per
    # file (the server); `devlint check` reads both from every file's text.
    taken: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    # (class, classes it builds into its attributes) for each module-level class with a method
    # other than __init__ that calls `torch.cuda.set_device`: a per-GPU worker (vLLM's Worker).
    workers: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    # Module globals (`roop.globals.execution_providers`) this file assigns every provider
    # the ONNX Runtime build has: a session another module makes with one lists CUDA's bare.
    provider_lists: list[str] = field(default_factory=list)
    # Module-level classes with bases that define no `__init__`: building one calls a base's,
    # so a call of the class relies on that constructor's device defaults.
    inherits_init: list[str] = field(default_factory=list)
    # Module-level classes whose `__init__` passes its `**kwargs` on to `super().__init__`: a
    # keyword the class does not name itself reaches the base's constructor (generative-models'
    # `EDMSampler(..., **kwargs)` over `BaseDiffusionSampler(device="cuda")`).
    kwargs_to_base: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (class, parameters it names)
    # Module-level functions that make a GPU current (`torch.cuda.set_device(local_rank)`, not
    # a written 0), and each module-level function's calls at the top of its body, by
    # qualified name: a call of a function that calls a setter first makes the device current
    # too (dinov2's `setup(args)` -> `default_setup` -> `distributed.enable()`).
    device_setters: list[str] = field(default_factory=list)
    setup_calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


def class_qualname(scope: Scope) -> str | None:
    """module.Class for a class defined at module level."""
    if scope.kind != "class" or scope.parent is None or scope.parent.kind != "module":
        return None
    return f"{scope.module_name}.{scope.node.name}" if scope.module_name else scope.node.name


def _def_qualname(scope: Scope) -> str | None:
    """module.func or module.Class for a function at module level or a class's __init__."""
    if scope.parent is None:
        return None
    return qualname_in(scope.parent, scope.node)


def qualname_in(outer: Scope, node: ast.AST) -> str | None:
    """_def_qualname of `node` defined directly in `outer`, without building its scope."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    prefix = f"{outer.module_name}." if outer.module_name else ""
    if outer.kind == "module":
        return prefix + node.name
    if outer.kind == "class" and outer.parent is not None and outer.parent.kind == "module":
        if node.name == "__init__":
            return prefix + outer.node.name
        return f"{prefix}{outer.node.name}.{node.name}"
    return None


@functools.cache
def _process_group_inits() -> frozenset[str]:
    return frozenset(catalog.api("DL013", "init", []))


@functools.cache
def selecting_setups() -> frozenset[str]:
    """Library calls that select the rank's GPU and then initialise the process group."""
    return frozenset(catalog.api("DL013", "setups", []))


@functools.cache
def _setup_roots() -> tuple[str, ...]:
    """The packages of those set-ups: a file that never names one calls none."""
    return tuple(sorted({name.split(".")[0] for name in selecting_setups()}))


@functools.cache
def _catalog_names() -> frozenset[str]:
    """Last components of the catalog's callables (`FaceRestoreHelper`, `init_detection_model`)."""
    return frozenset(d.qualname.rsplit(".", 1)[-1] for d in _library_defaults())


@functools.cache
def _catalog_modules() -> frozenset[str]:
    """Modules the catalog's callables are defined in (`facexlib.detection`)."""
    return frozenset(d.qualname.rsplit(".", 1)[0] for d in _library_defaults() if "." in d.qualname)


def catalog_module(module: str) -> bool:
    """Is this file, in the checked tree, one the catalog describes (facexlib checked in its
    own tree)? Its definitions decide over the catalog's entries, so they are collected."""
    modules = _catalog_modules()
    if not module or module.rpartition(".")[2] not in _catalog_module_names():
        return False
    parts = module.split(".")
    return any(".".join(parts[i:]) in modules for i in range(len(parts)))


@functools.cache
def _catalog_module_names() -> frozenset[str]:
    return frozenset(m.rpartition(".")[2] for m in _catalog_modules())


@functools.cache
def _library_defaults() -> tuple[Default, ...]:
    entries = []
    for entry in catalog.api("DL012", "libraries", []):
        for name in entry["names"]:
            entries.append(
                Default(
                    qualname=name,
                    param=entry.get("param", "device"),
                    position=entry.get("position"),
                    default=entry["default"],
                    where=f"{entry['library']} {entry['versions']}, per devlint's table",
                    none_means_cuda=entry["default"].startswith("None"),
                    also=tuple(entry.get("also", ())),
                    means=GPU0 if "cuda:0" in entry["default"] else CURRENT_DEVICE,
                    library=Library(entry["library"], entry["versions"], "table"),
                )
            )
    return tuple(entries)


def _matches(call: str, definition: str) -> bool:
    """A call's qualified name and a definition's, allowing for different import roots
    (`face3d.util.FAN` vs `src.face3d.util.FAN`)."""
    return call == definition or definition.endswith("." + call) or call.endswith("." + definition)


BOUND = 6  # functions a default is followed through


def _reaches_unused(callee: str, position: int | None, keyword: str | None, unused: dict) -> bool:
    """Is the parameter a value is passed to one its function never reads? (`unused`: the
    never-read device parameters by their function's last name.)"""
    return any(
        _matches(callee, qualname) and (keyword == param or (keyword is None and position == param_position))
        for qualname, param, param_position in unused.get(_last(callee), ())
    )


def _process_groups(facts: list[FileFacts]) -> list[tuple[str, bool]]:
    """Each `init_process_group` ("path:line") and whether the device was selected for it:
    by its own function, before it or after it with no barrier in between (InternVL's eval
    scripts: `init_process_group(...)`, then `set_device(LOCAL_RANK)`), or by a function
    that calls `set_device` and calls the helper it
    sits in (magic-animate's `distributed_main`: `set_device(rank)`, then `distributed_init(args)`)."""
    direct = {q for f in facts for q in f.device_setters}
    after = [c for f in facts for function, callees in f.setup_calls if function in direct for c in callees]
    helpers = {where: function for f in facts for where, function in f.process_group_functions}
    return sorted(
        (where, selected or (where in helpers and any(_matches(c, helpers[where]) for c in after)))
        for f in facts for where, selected in f.process_groups
    )


def current_setters(facts: list[FileFacts]) -> set[str]:
    """The functions whose call makes a GPU current: those calling `set_device`, and, up to
    BOUND calls up, those that call one of them at the top of their body."""
    setters = {q for f in facts for q in f.device_setters}
    calls = [(function, callees) for f in facts for function, callees in f.setup_calls]
    for _ in range(BOUND):
        by_last: dict[str, set[str]] = {}
        for setter in setters:
            by_last.setdefault(_last(setter), set()).add(setter)
        more = {
            function for function, callees in calls
            if function not in setters and any(_matches(c, s) for c in callees for s in by_last.get(_last(c), ()))
        }
        if not more:
            break
        setters |= more
    return setters


def wanted(facts: list[FileFacts]) -> _Wanted | None:
    """Files the first pass skipped that hold facts the index needs: calls of a callable
    with a device default (a caller may pass its own default on), and definitions of the
    callables a default is only passed on to (they may never read it)."""
    called: set[str] = set()
    defined: set[str] = set()
    for f in facts:
        for entry in f.defaults:
            called.add(_last(entry.qualname))
            if not entry.used:
                defined.update(_last(callee) for callee, _, _ in entry.passes)
    called.update(_last(setter) for setter in current_setters(facts))  # their callers may set the device too
    forwards = [fw for f in facts for fw in f.forwards]
    for _ in range(BOUND):  # a caller passing its default on to one of these may rely on it too
        more = {_last(fw.function) for fw in forwards if _last(fw.callee) in called} - called
        if not more:
            break
        called |= more
    return _Wanted(called, defined) if called or defined else None


class _Wanted:
    """A test on a file's text: does it call one of `called`, or define one of `defined`?"""

    def __init__(self, called: set[str], defined: set[str]):
        self.names = tuple(sorted(called | defined))
        parts = []
        if called:
            parts.append(rf"\b(?:{'|'.join(sorted(map(re.escape, called)))})\s*\(")
        if defined:
            parts.append(rf"\b(?:def|class)\s+(?:{'|'.join(sorted(map(re.escape, defined)))})\b")
        self._pattern = re.compile("|".join(parts))

    def search(self, text: str) -> bool:
        return any(name in text for name in self.names) and self._pattern.search(text) is not None


def _last(qualname: str) -> str:
    return qualname.rsplit(".", 1)[-1]


def _best(qualnames: set[str], call: str) -> str | None:
    """The one definition a call names: the one written in full, or the only one matched."""
    if call in qualnames:
        return call
    return next(iter(qualnames)) if len(qualnames) == 1 else None


class ProjectIndex:
    def __init__(
        self, facts: list[FileFacts] = (), library: tuple[Default, ...] | list[Default] | None = None, base: str = "",
        imported: set[str] | None = None, aliases: dict[str, str] | None = None, builds: tuple[ConfigBuild, ...] = (),
    ):
        """`library`: what the libraries the project imports default to, read from their
        installed source or their tables (devlint/libraries); None: the catalog's tables.
        `base`: the directory the files' display names are relative to ("": the working one).
        `imported`: the names the project's files take from other modules (libraries.imports.
        taken_names); None when the project was not read (one file alone): any may be.
        `aliases`: what a module's re-exported names stand for (`pkg.MusicGen` ->
        `pkg.musicgen.MusicGen`, libraries.imports.aliases), so that a call written through a
        package's `__init__` finds the definition.
        `builds`: what the project's YAML configs build (static/configs.py)."""
        self._recorded: set[str] | None = None
        self.builds = tuple(builds)  # kept for the indexes of the same project made after a fix
        self._builds: dict[str, list[ConfigBuild]] = {}
        for build in builds:
            self._builds.setdefault(_last(build.target), []).append(build)
        self.base = base  # the directory display paths are relative to ("": the working directory)
        self._digests: dict[str, str] = {}  # the index does not change once built
        self._subclasses: dict[frozenset[str], set[str]] = {}
        self._library: dict[str, list[Default]] = {}
        for entry in _library_defaults() if library is None else library:
            self._library.setdefault(_last(entry.qualname), []).append(entry)
        self._project: dict[str, list[Default]] = {}
        self._defined: dict[str, set[str]] = {}  # project definitions by last name, defaults or not
        self._unused: dict[str, list[tuple[str, str, int | None]]] = {}  # never-read device parameters by last name
        for f in facts:
            for unused in f.unused:
                self._unused.setdefault(_last(unused[0]), []).append(unused)
        for f in facts:
            for entry in f.defaults:
                if entry.used or not all(_reaches_unused(c, position, keyword, self._unused) for c, position, keyword in entry.passes):
                    self._add(entry)
            for qualname in f.definitions:
                self._defined.setdefault(_last(qualname), set()).add(qualname)
        self._propagate([fw for f in facts for fw in f.forwards])
        self._process_groups = _process_groups(facts)
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
        self._extensions: dict[str, list[Extension]] = {}
        for extension in (e for f in facts for e in f.extensions):
            self._extensions.setdefault(_last(extension.name), []).append(extension)
        self._extension_sources: dict[Extension, list[str]] = {}
        self._returns: dict[str, list[tuple[str, str, int | None]]] = {}
        for f in facts:
            for entry in f.returns:
                self._returns.setdefault(_last(entry[0]), []).append(entry)
        self._device_params: dict[str, list[tuple[str, str, int | None, bool]]] = {}
        for f in facts:
            for entry in f.device_params:
                self._device_params.setdefault(_last(entry[0]), []).append(entry)
        self._provider_lists = {q for f in facts for q in f.provider_lists}
        self._workers = sorted({q for f in facts for worker, owned in f.workers for q in (worker, *owned)})
        self._saves: dict[str, set[bool]] = {}
        for f in facts:
            for key, from_cpu in f.saves:
                self._saves.setdefault(key, set()).add(from_cpu)
        self._imported = imported
        self._aliases = aliases or {}
        self._aliases_by_last: dict[str, list[str]] = {}
        self._renamed = {_last(a) for a, t in self._aliases.items() if _last(a) != _last(t)}  # `import f as g`
        for alias, target in sorted(self._aliases.items()):
            self._aliases_by_last.setdefault(_last(target), []).append(f"{alias}={target}")
        self._bases: dict[str, list[tuple[str, str]]] = {}
        for cls, base in sorted({b for f in facts for b in f.bases}):
            self._bases.setdefault(_last(cls), []).append((cls, base))
        self._inheritors: dict[str, list[str]] = {}
        self._setters: dict[str, set[str]] = {}
        for setter in current_setters(facts):
            self._setters.setdefault(_last(setter), set()).add(setter)
        self._inherit_constructors(
            sorted({q for f in facts for q in f.inherits_init}), sorted({k for f in facts for k in f.kwargs_to_base})
        )

    def _add(self, entry: Default) -> None:
        self._project.setdefault(_last(entry.qualname), []).append(entry)
        self._defined.setdefault(_last(entry.qualname), set()).add(entry.qualname)

    def _inherit_constructors(self, inheriting: list[str], forwarding: list[tuple[str, tuple[str, ...]]] = ()) -> None:
        """A class without its own `__init__` is built by its nearest base's: its calls get
        that constructor's defaults (OpenVoice's `BaseSpeakerTTS(config)` omits the
        `device='cuda:0'` of `OpenVoiceBaseClass.__init__`). One whose `__init__` passes
        `**kwargs` on to the base's gets them as keywords (positions differ), for the
        parameters it does not name itself; bases first, so that chains of such classes
        pass them down."""
        own = set(inheriting)
        for cls, named in sorted(forwarding, key=lambda c: len(self.ancestors(c[0]))):
            constructor = next((base for base in self.ancestors(cls) if base not in own), None)
            entries = self._entries(constructor) if constructor else []
            for entry in entries:
                if entry.param not in named:
                    self._add(replace(entry, qualname=cls, position=None))
        for cls in inheriting:
            constructor = next((base for base in self.ancestors(cls) if base not in own), None)
            entries = self._entries(constructor) if constructor else []
            if entries and not self._entries(cls):
                self._inheritors.setdefault(entries[0].qualname, []).append(cls)
                for entry in entries:
                    self._add(replace(entry, qualname=cls))

    def sets_current_device(self, qualname: str | None) -> bool:
        """Does a call of `qualname` make a GPU current for the code after it (current_setters)?"""
        if not qualname:
            return False
        self._note("setters:")
        last = _last(self._canonical(qualname))
        return any(_matches(qualname, s) or _matches(self._canonical(qualname), s) for s in self._setters.get(last, ()))

    def setter_names(self) -> set[str]:
        """Last names of the functions whose call makes a GPU current."""
        return set(self._setters)

    def inheritors(self, qualname: str) -> list[str]:
        """The project classes whose construction runs the `__init__` of class `qualname`."""
        return self._inheritors.get(qualname, [])

    def _propagate(self, forwards: list[Forward]) -> None:
        """A function passing its own falsy default on to a callable that relies on its
        default relies on it too (`_create(device=None)` -> `select_device(device)`), up to
        BOUND functions up."""
        for _ in range(BOUND):
            added = False
            for fw in forwards:
                if any(d.param == fw.param for d in self._entries(fw.function)):
                    continue
                omitted = fw.callee_keyword is None and fw.callee_position is None  # called with no argument
                for target in self._entries(fw.callee):
                    if (omitted and target.returns) or target.param == fw.callee_keyword or (
                        fw.callee_keyword is None and target.position == fw.callee_position
                    ):
                        means = (
                            f"it is then `{_last(fw.callee)}()`: {target.means}" if omitted
                            else f"`{_last(fw.callee)}(...)` gets it and falls back to {target.means}"
                        )
                        self._add(Default(
                            fw.function, fw.param, fw.position, fw.default, fw.where, none_means_cuda=fw.default == "None",
                            means=means, selects=target.selects, index=target.index and not omitted, also=(*fw.also, *target.also),
                        ))
                        added = True
                        break
            if not added:
                return

    def _canonical(self, qualname: str) -> str:
        """The definition a name written through re-exports stands for, followed a few links."""
        if not self._aliases:
            return qualname
        for _ in range(4):
            parts = qualname.split(".")
            for i in range(len(parts), 0, -1):
                prefix = ".".join(parts[:i])
                target = self._aliases.get(prefix)
                if target is not None and i < len(parts) and target.startswith(prefix + "."):
                    continue  # `pkg.op` re-exports `pkg.op.op`, but `pkg.op.x` is still module `pkg.op`'s `x`
                if target is not None and target != prefix:
                    qualname = ".".join([target, *parts[i:]])
                    break
            else:
                return qualname
        return qualname

    def same_definition(self, call: str, definition: str) -> bool:
        """Does a call written as `call` (perhaps through re-exports) name `definition`?"""
        return _matches(call, definition) or _matches(self._canonical(call), definition)

    def callable_names(self) -> set[str]:
        """Last components of every callable with a CUDA default (`GFPGANer`, `init_detection_model`)."""
        return set(self._library) | set(self._project)

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
        """What the index holds for one lookup key, hashed (once per key)."""
        if dep not in self._digests:
            self._digests[dep] = self._digest(dep)
        return self._digests[dep]

    def _digest(self, dep: str) -> str:
        kind, _, name = dep.partition(":")
        if kind == "process-groups":
            held = [repr(self._process_groups)]
        elif kind == "selectors":
            held = sorted(self.selector_names())
        elif kind == "default":
            entries = self._library.get(name, []) + self._project.get(name, [])
            held = sorted(repr(d) for d in entries) + sorted(self._defined.get(name, ()))
        elif kind == "sinks":
            held = sorted(repr(s) for s in self._sink_names.get(name, []))
        elif kind == "kernel":
            held = sorted(repr(k) for k in self._kernels.get(name, []))
        elif kind == "maskers":
            held = self._maskers
        elif kind == "file":
            held = [_file_digest(name)]
        elif kind == "extension":
            held = sorted(repr(e) for e in self._extensions.get(name, []))
        elif kind == "device_params":
            held = sorted(map(repr, self._device_params.get(name, []) if name else sorted(self._device_params)))
        elif kind == "returns":
            held = sorted(map(repr, self._returns.get(name, []) if name else sorted(self._returns)))
        elif kind == "saves":
            held = sorted(map(repr, self._saves.get(name, ())))
        elif kind == "workers":
            held = self._workers
        elif kind == "setters":
            held = sorted(s for ss in self._setters.values() for s in ss)
        elif kind == "providers":
            held = sorted(q for q in self._provider_lists if not name or _last(q) == name)
        elif kind == "unused":
            held = sorted(map(repr, self._unused.get(name, [])))
        elif kind == "imported":
            held = [repr(self.imported_elsewhere(name))]
        elif kind == "configs":
            held = sorted(map(repr, self._builds.get(name, [])))
        elif kind == "bases":
            held = sorted(repr(b) for b in (self._bases.get(name, []) if name else [p for ps in self._bases.values() for p in ps]))
        else:
            qualname, _, param = name.rpartition(":")
            held = [repr(self._type_callers.get((qualname, param)))]
        if name and kind in ("default", "sinks", "kernel", "extension", "returns", "bases"):
            held = held + self._aliases_by_last.get(_last(name), [])
        return hashlib.blake2b("|".join(held).encode(), digest_size=8).hexdigest()

    def extension_names(self) -> set[str]:
        """Last components of the extension modules the project's setup scripts build."""
        return set(self._extensions)

    def unguarded_extension(self, qualname: str | None) -> str | None:
        """For an extension module the project builds and whose C++/CUDA sources (read as
        text) open no device guard: the sources read, for the message; else None. The one
        named in full decides over those matched by a suffix (five packages may each have
        a `backend._backend`)."""
        if not qualname:
            return None
        qualname = self._canonical(qualname)
        last = _last(qualname)
        if last not in self._extensions:
            return None
        self._note(f"extension:{last}")
        candidates = [e for e in self._extensions[last] if e.name == qualname] or [
            e for e in self._extensions[last] if _matches(qualname, e.name) or _matches(e.name, qualname)
        ]
        for extension in candidates:
            if extension.inline:
                return extension.inline
            if extension not in self._extension_sources:
                self._extension_sources[extension] = _extension_sources(extension, self.path_of(extension.directory))
            paths = self._extension_sources[extension]
            if not paths:
                continue
            texts = []
            for path in paths:
                self.depends_on_file(path)
                texts.append(read_source(path))
            if all(text is not None and not EXTENSION_GUARD.search(text) for text in texts):
                shown = sorted(paths, key=lambda p: not p.endswith((".cu", ".cuh")))  # the kernels first
                return ", ".join(os.path.relpath(p, self.path_of(extension.directory)) for p in shown[:3]) + (", ..." if len(shown) > 3 else "")
        return None

    def path_of(self, display: str) -> str:
        """A file named as the checked files are (relative to where the check runs) as a path
        this process can open (the language server runs elsewhere)."""
        return os.path.join(self.base, display) if self.base else display

    def depends_on_file(self, path: str) -> None:
        """A result read another file (an extension's C++ source): a cached result is
        reused only while that file is unchanged."""
        self._note(f"file:{path}")

    def cuda_defaults(self, qualname: str | None) -> list[Default]:
        """The defaults a call of `qualname` relies on when it omits a device parameter. A
        definition in the checked project decides over a catalog entry of the same name (it
        is the code that runs), and one whose name is written in full over one matched by a
        suffix."""
        if not qualname:
            return []
        if _last(qualname) in self._renamed:
            qualname = self._canonical(qualname)
        last = _last(qualname)
        self._note(f"default:{last}")
        if last not in self._defined and last not in self._library:
            return []  # the common case, asked for every call of every file
        return self._entries(self._canonical(qualname))

    def _entries(self, qualname: str) -> list[Default]:
        last = _last(qualname)
        defined = _best({q for q in self._defined.get(last, ()) if _matches(qualname, q)}, qualname)
        if defined is not None:
            return [d for d in self._project.get(last, []) if d.qualname == defined]
        library = _best({d.qualname for d in self._library.get(last, []) if _matches(qualname, d.qualname)}, qualname)
        return [d for d in self._library.get(last, []) if d.qualname == library]

    def selector_names(self) -> set[str]:
        """Last names of the callables that, given their device parameter, set
        CUDA_VISIBLE_DEVICES from it (yolov5's `select_device`)."""
        self._note("selectors:")
        return {last for last, entries in self._project.items() if any(d.selects for d in entries)}

    def process_group_selects_device(self) -> bool:
        """Does every `init_process_group` of the project come after its code selected the
        device? Then, in code that only runs under a process group, the current device is
        the rank's own GPU."""
        self._note("process-groups:")
        return bool(self._process_groups) and all(selected for _, selected in self._process_groups)

    def type_sinks(self, qualname: str | None) -> list[TypeSink]:
        """The type-string helpers a call of `qualname` may reach."""
        if not qualname:
            return []
        qualname = self._canonical(qualname)
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
        qualname = self._canonical(qualname)
        last = qualname.rsplit(".", 1)[-1]
        self._note(f"kernel:{last}")
        found = {k.runtime for k in self._kernels.get(last, []) if _matches(qualname, k.qualname)}
        return found.pop() if len(found) == 1 else None

    def kernel_names(self) -> set[str]:
        """Last components of every kernel and kernel factory (`dtw_kernel`, `median_kernel`)."""
        return set(self._kernels)

    def ancestors(self, qualname: str | None) -> list[str]:
        """The bases a project class inherits from, nearest first, through the project's own
        classes (bounded): `SyncDataParallel` -> `torch.nn.DataParallel`."""
        found: list[str] = []
        current = self._canonical(qualname) if qualname else qualname
        for _ in range(BOUND):
            if not current:
                break
            last = _last(current)
            self._note(f"bases:{last}")
            matched = [base for cls, base in self._bases.get(last, []) if _matches(current, cls)]
            if len(matched) != 1 or matched[0] in found:
                break
            found.append(matched[0])
            current = matched[0]
        return found

    def returned_device(self, qualname: str) -> tuple[str, int | None] | None:
        """(lattice point, index) a call of a project function without arguments returns,
        when that is the current device or GPU0 (see FileFacts.returns)."""
        qualname = self._canonical(qualname)
        last = _last(qualname)
        self._note(f"returns:{last}")
        found = {(kind, index) for q, kind, index in self._returns.get(last, []) if _matches(qualname, q)}
        return found.pop() if len(found) == 1 else None

    def device_parameters(self, qualname: str | None) -> list[tuple[str, int | None, bool]]:
        """(parameter, position, first element) of each parameter a project function of
        another module uses as a device (see FileFacts.device_params)."""
        if not qualname:
            return []
        qualname = self._canonical(qualname)
        last = _last(qualname)
        self._note(f"device_params:{last}")
        found = {(q, p, pos, first) for q, p, pos, first in self._device_params.get(last, []) if _matches(qualname, q)}
        if len({q for q, *_ in found}) != 1:
            return []  # no such function, or several that the call could mean
        return sorted((p, pos, first) for _, p, pos, first in found)

    def never_reads(self, qualname: str | None, param: str) -> bool:
        """Does the project's `qualname` never read its device parameter `param` (it only
        stores it where nothing reads it: StreamDiffusion's `EngineBuilder(device=...)`)?
        A device passed there is used nowhere."""
        if not qualname:
            return False
        last = _last(qualname)
        self._note(f"unused:{last}")
        found = {q for q, p, _ in self._unused.get(last, ()) if p == param and _matches(qualname, q)}
        return len(found) == 1

    def device_parameter_names(self) -> set[str]:
        """Last names of the functions device_parameters knows."""
        self._note("device_params:")
        return set(self._device_params)

    def device_helper_names(self) -> set[str]:
        """Last names of the functions returned_device knows (for the files to read)."""
        self._note("returns:")
        return set(self._returns)

    def runs_on_a_worker_device(self, cls: str | None) -> bool:
        """Is `cls` a per-GPU worker class (a method of it calls `torch.cuda.set_device`), or
        a class such a worker builds into its attributes (vLLM's Worker and its ModelRunner)?
        Their methods run after the worker made its GPU current."""
        if not cls:
            return False
        self._note("workers:")
        return any(_matches(cls, q) for q in self._workers)

    def holds_every_provider(self, qualname: str | None) -> bool:
        """Is `qualname` a module global some module assigns every available ONNX Runtime
        provider (`onnxruntime.get_available_providers()` or a selection from it)?"""
        if not qualname:
            return False
        self._note(f"providers:{_last(qualname)}")
        return any(_matches(self._canonical(qualname), q) for q in self._provider_lists if _last(q) == _last(qualname))

    def provider_list_names(self) -> set[str]:
        """Last names of those globals (for the files DL014 must read)."""
        self._note("providers:")
        return {_last(q) for q in self._provider_lists}

    def saved_only_from_cpu(self, key: str | None) -> bool:
        """Does the project write the file named `key` only from CPU values (`torch.save(x.cpu(),
        "feats.pt")`)? Then loading it puts nothing on a GPU."""
        if not key:
            return False
        self._note(f"saves:{key}")
        return self._saves.get(key) == {True}

    def config_builds(self, qualname: str | None) -> list[ConfigBuild]:
        """The config entries that build the project's `qualname` (a class, or a function),
        by its dotted name as the configs write it."""
        if not qualname:
            return []
        self._note(f"configs:{_last(qualname)}")
        return [b for b in self._builds.get(_last(qualname), []) if _matches(b.target, qualname)]

    def imported_elsewhere(self, name: str) -> bool:
        """Does any module of the project import `name` from another (by name, or read it
        unbound after a star import)? A module's global that none does is its own."""
        self._note(f"imported:{name}")
        return self._imported is None or name in self._imported

    def subclass_names(self, bases: frozenset[str]) -> set[str]:
        """Last names of the project's classes that inherit one of `bases` (for the files a
        rule on those bases must read)."""
        self._note("bases:")
        if bases not in self._subclasses:
            self._subclasses[bases] = {
                last for last, pairs in self._bases.items()
                if any(set(self.ancestors(cls)) & bases for cls, _ in pairs)
            }
        return self._subclasses[bases]

    def maskers(self) -> list[str]:
        """Qualified names of the project's functions that set CUDA_VISIBLE_DEVICES."""
        self._note("maskers:")
        return self._maskers
