"""Process-wide wrappers: the calls that can choose a device, judged where they live.

Factories, `device=` calls and tensor moves (placements.py), `torch.cuda.*` runtime
calls, the legacy CUDA constructors, the location tags that `torch.load` restores,
storages, `DataParallel`, default-device setters and contexts, process groups,
`CUDA_VISIBLE_DEVICES` writes and thread starts. Ops that only follow their inputs'
devices (arithmetic, views, `nn.functional`) are not touched, so they cost nothing. The
names come from the rule catalog (the same tables the static checks read); each table is
installed by one function below, and every patch records exactly what it replaced so that
uninstalling restores it, in reverse order.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import os
import sys
import threading
from dataclasses import dataclass
from types import MethodType

import torch
import torch.utils._device

from devlint import catalog
from devlint.runtime import distributed, legacy, placements
from devlint.runtime.devices import Target, current_index, label, target
from devlint.runtime.resolve import resolve
from devlint.runtime.requests import Request, placement


@dataclass(frozen=True)
class Patch:
    owner: object
    name: str
    original: object  # what the owner's own namespace held, when `owned`
    owned: bool  # False: the attribute was inherited, so undoing deletes ours

    def undo(self) -> None:
        if self.owned:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)


@dataclass(frozen=True)
class TableEntry:
    """An entry devlint added to one of torch's own tables."""

    table: dict
    key: object

    def undo(self) -> None:
        self.table.pop(self.key, None)


class JudgedMethod:
    """A Tensor method judged when it is called on a tensor.

    Looked up on the class, it is torch's own method: torch hands `torch.Tensor.to` to
    `__torch_function__` handlers, and some compare it with the methods they know
    (`nn.UninitializedParameter`, torchvision's tv_tensors), so it must stay the same object.
    """

    __slots__ = ("original", "call")

    def __init__(self, original, call) -> None:
        self.original = original
        self.call = call

    def __get__(self, tensor, owner=None):
        return self.original if tensor is None else MethodType(self.call, tensor)


# Under torch.compile the wrappers stay out of the traced graph (torch < 2.3 has no such check).
_is_compiling = getattr(torch.compiler, "is_compiling", lambda: False)


class _Installer:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.patches: list = []  # Patch, TableEntry: each knows how to undo itself

    def replace(self, owner, name: str, make) -> None:
        """Set `owner.name` to `make(current)`; the current value is what callers reach."""
        owned = name in vars(owner)
        stored = vars(owner)[name] if owned else None
        current = getattr(owner, name)
        replacement = make(current)
        if name == "__new__":
            replacement = staticmethod(replacement)
        setattr(owner, name, replacement)
        self.patches.append(Patch(owner, name, stored, owned))

    def wrap(self, owner, name: str, judge) -> None:
        """Judge every call to `owner.name` with `judge(args, kwargs) -> Request | None`."""
        hub = self.hub

        def make(original):
            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                if not hub.sessions or hub.thread.busy:
                    return original(*args, **kwargs)
                return hub.intercept(judge(args, kwargs), lambda: original(*args, **kwargs))

            return wrapper

        self.replace(owner, name, make)

    def wrap_name(self, dotted: str, judge) -> None:
        """Wrap a function by name; for a class, the `__new__` or `__init__` it defines
        (then `judge` sees the arguments after `cls`/`self`)."""
        found = resolve(dotted)
        if found is None:
            return
        owner, name, value = found
        if isinstance(value, type):
            method = "__new__" if "__new__" in vars(value) else "__init__"
            self.wrap(value, method, lambda args, kwargs: judge(args[1:], kwargs))
        else:
            self.wrap(owner, name, judge)


def _argument(args, kwargs, name: str | None, position: int | None):
    """An argument by keyword or position; None when not given (every default here is None)."""
    if name is not None and name in kwargs:
        return kwargs[name]
    if position is not None and position < len(args):
        return args[position]
    return None


def _bound(function, args, kwargs) -> dict:
    """Arguments by parameter name, for rare calls whose parameters are not in the catalog."""
    try:
        return inspect.signature(function).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return {}


# -- DL006: torch.cuda calls that act on the current device ---------------------------


def _current_device_calls(installer: _Installer) -> None:
    for entry in [*catalog.api("DL006", "calls", []), *catalog.api("DL006", "runtime_calls", [])]:
        name, param, position = entry["name"], entry.get("device_param"), entry.get("device_position")
        kind = "context" if entry.get("effect") == "context" else "allocation"
        existing, initialises = entry.get("existing_keyword"), bool(entry.get("initialises"))
        if param == "device":
            fix = f"pass the device: `{name}({{device}})`"
        elif param:
            fix = f"pass a `{param}` on the target device, e.g. `{param}=torch.cuda.Stream({{device}})`"
        else:
            fix = "call `torch.cuda.set_device({device})` first"

        def judge(args, kwargs, name=name, param=param, position=position, kind=kind, existing=existing, fix=fix, initialises=initialises):
            if existing and existing in kwargs:
                return None  # wraps something that already exists
            spec = _argument(args, kwargs, param, position) if param else None
            where = Target(current_index(), True) if spec is None else target(spec)
            request = placement(where, f"`{name}()`", "DL006", fix, kind) if where else None
            return request._replace(initialises=True) if request and initialises else request

        installer.wrap_name(name, judge)


def _stream_methods(installer: _Installer) -> None:
    for method in catalog.api("DL006", "stream_methods", []):

        def judge(args, kwargs, method=method):
            where = target(args[0])
            if where is None:
                return None
            return Request(
                where.index,
                "DL006",
                f"`Stream.{method}()` on a stream of {label(where.index)} (e.g. `torch.cuda.current_stream()` with no device)",
                f"use a stream of the target device: `torch.cuda.current_stream({{device}}).{method}()`",
                "context",
            )

        installer.wrap(torch.cuda.Stream, method, judge)


def _event_methods(installer: _Installer) -> None:
    for method in catalog.api("DL006", "event_methods", []):

        def judge(args, kwargs, method=method):
            stream = _argument(args[1:], kwargs, "stream", 0)
            where = Target(current_index(), True) if stream is None else target(stream)
            fix = f"pass a stream of the target device: `.{method}(torch.cuda.current_stream({{device}}))`"
            return placement(where, f"`Event.{method}()`", "DL006", fix, "context") if where else None

        installer.wrap(torch.cuda.Event, method, judge)


def _selectors(installer: _Installer) -> None:
    """`set_device(i)`, `torch.cuda.device(i)`: judged like any request, and remembered
    per thread (a thread that never selected a device is on device 0: DL102)."""
    hub = installer.hub
    for code, rule in catalog.load().items():  # each selector is reported under the rule that lists it
        for name in rule.api.get("selectors", []):

            def judge(args, kwargs, name=name, code=code):
                spec = _argument(args, kwargs, "device", 0)
                where = target(spec)
                if where is None:
                    return None  # None or a negative index: a no-op
                hub.select(where.index)
                return Request(
                    where.index,
                    code,
                    f"`{name}({spec!r})` selects {label(where.index)}, which creates its CUDA context",
                    f"select the GPU the program was given: `{name}({{device}})`",
                    "context",
                    where.via_current,
                )

            installer.wrap_name(name, judge)


# -- DL004: legacy constructors --------------------------------------------------------


def _legacy_constructors(installer: _Installer) -> None:
    for type_name, dtype in catalog.api("DL004", "constructors", {}).items():
        if hasattr(torch.cuda, type_name):
            installer.replace(torch.cuda, type_name, lambda original, n=type_name, d=dtype: legacy.LegacyConstructor(n, original, d, installer.hub))


# -- DL005: checkpoints ------------------------------------------------------------------


def _loaders(installer: _Installer) -> None:
    """`map_location` given as a device is judged at the call; otherwise the restore
    hook judges each saved location tag, and what it did not see (a TorchScript module
    restored in C++) is found afterwards among the result's tensors."""
    hub = installer.hub
    for entry in catalog.api("DL005", "loaders", []):
        found = resolve(entry["name"])
        if found is None:
            continue
        owner, attribute, _ = found
        name, position = entry["name"], entry.get("map_location_position")

        def make(original, name=name, position=position):
            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                if not hub.sessions or hub.thread.busy:
                    return original(*args, **kwargs)
                mapping = _argument(args, kwargs, "map_location", position)
                where = target(mapping) if isinstance(mapping, (str, bytes, int, torch.device)) else None
                if where is not None:
                    request = placement(where, f"`{name}(map_location={mapping!r})`", "DL002", "pass `map_location={device}`")
                    return hub.intercept(request, lambda: original(*args, **kwargs))
                state = hub.thread
                state.map_locations = state.map_locations + (mapping,)
                restored = state.restored
                try:
                    result = original(*args, **kwargs)
                finally:
                    state.map_locations = state.map_locations[:-1]
                if mapping is None and state.restored == restored:
                    _judge_loaded(hub, name, result)
                return result

            return wrapper

        installer.replace(owner, attribute, make)


def _judge_loaded(hub, name: str, result) -> None:
    """Tensors a loader put on GPUs without passing through the restore hook."""
    tensors = []
    if isinstance(result, torch.nn.Module):
        tensors = [*result.parameters(), *result.buffers()]
    by_device: dict[int, list] = {}
    for tensor in tensors:
        if tensor.device.type == "cuda":
            by_device.setdefault(tensor.device.index, []).append(tensor)
    for index, found in sorted(by_device.items()):
        request = Request(
            index,
            "DL005",
            f"`{name}()` without `map_location` restored {len(found)} tensors on {label(index)}, where they were saved",
            "pass `map_location={device}` (or \"cpu\")",
        )
        hub.intercept(request, lambda found=found: found)


def _restore_hook(installer: _Installer) -> None:
    hub = installer.hub

    def judge(args, kwargs):
        location = _argument(args, kwargs, "location", 1)
        hub.thread.restored += 1
        where = target(location)
        if where is None:
            return None
        mappings = hub.thread.map_locations
        mapping = mappings[-1] if mappings else None
        if isinstance(mapping, dict) and location in mapping.values():
            request = placement(where, f"`map_location` mapping to {location!r}", "DL002", "map to {device}")
            return request._replace(from_loader=True)
        return Request(
            where.index,
            "DL005",
            f"`torch.load()` without `map_location` restores a tensor saved on {location!r} to {label(where.index)}",
            "pass `map_location={device}` (or \"cpu\")",
            via_current=where.via_current,
            from_loader=True,
        )

    installer.wrap(torch.serialization, "default_restore_location", judge)


# -- storages ----------------------------------------------------------------------------


def _storages(installer: _Installer) -> None:
    def judge_cuda(args, kwargs):
        spec = _argument(args[1:], kwargs, "device", 0)
        # `_StorageBase.cuda` treats a falsy index (0 included) as "the current device"
        where = target(spec) if spec else Target(current_index(), True)
        return placement(where, "`storage.cuda()`", "DL001", "use `.to(device={device})`") if where else None

    def judge_device(call):
        def judge(args, kwargs):
            spec = kwargs.get("device")
            where = target(spec)
            return placement(where, f"`{call}(device={spec!r})`", "DL002", "pass `device={device}`") if where else None

        return judge

    installer.wrap(torch.storage._StorageBase, "cuda", judge_cuda)
    installer.wrap(torch.storage._StorageBase, "to", judge_device("storage.to"))
    installer.wrap(torch.UntypedStorage, "__new__", lambda args, kwargs: judge_device("torch.UntypedStorage")(args[1:], kwargs))


# -- DL007: DataParallel -------------------------------------------------------------------


def _data_parallel(installer: _Installer) -> None:
    done = set()
    for name in catalog.api("DL007", "wrappers", []):
        found = resolve(name)
        if found is None or not callable(found[2]) or id(found[2]) in done:
            continue
        done.add(id(found[2]))
        is_class = isinstance(found[2], type)
        function = found[2].__init__ if is_class else found[2]
        skipped = (None,) if is_class else ()  # `self`, which wrap_name leaves out

        def judge(args, kwargs, function=function, skipped=skipped):
            bound = _bound(function, skipped + tuple(args), kwargs)
            ids, output = bound.get("device_ids"), bound.get("output_device")
            if ids is None and output is None:
                return Request(
                    0,
                    "DL007",
                    "`DataParallel` without `device_ids` replicates onto every visible GPU and gathers outputs on cuda:0",
                    "pass `device_ids=[{device}]` and `output_device={device}`, or use DistributedDataParallel",
                )
            spec = output if output is not None else ids[0]
            where = target(spec)
            return placement(where, f"`DataParallel` output device {spec!r}", "DL007", "pass `output_device={device}`") if where else None

        installer.wrap_name(name, judge)


# -- DL010: default device -----------------------------------------------------------------


def _setters(installer: _Installer) -> None:
    hub = installer.hub
    for name in catalog.api("DL010", "setters", []):
        found = resolve(name)
        if found is None:
            continue

        def judge(args, kwargs, name=name):
            value = _argument(args, kwargs, None, 0)
            if legacy.is_cuda_type(value):
                index = current_index()
                return Request(
                    index,
                    "DL010",
                    f"`{name}({value!r})` makes every new tensor a CUDA tensor on the current device, cuda:{index}",
                    "keep the default tensor type on the CPU and pass `device={device}` to factories",
                    via_current=True,
                )
            where = target(value)
            fix = "give the default device an index: `torch.set_default_device({device})`"
            return placement(where, f"`{name}({value!r})`", "DL010", fix) if where else None

        def make(original, judge=judge):
            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                args = tuple(legacy.unwrap(a) for a in args)
                if not hub.sessions or hub.thread.busy:
                    return original(*args, **kwargs)
                return hub.intercept(judge(args, kwargs), lambda: original(*args, **kwargs))

            return wrapper

        installer.replace(found[0], found[1], make)


def _device_contexts(installer: _Installer) -> None:
    """A factory left without `device` while a `torch.device(...)` context or
    `set_default_device` is in effect is judged where torch fills in the device: in the
    context's own `__torch_function__`, which runs only while a default device is set. It
    sees factories bound before tracing began (`from torch import zeros`) too."""
    hub = installer.hub
    names = placements.default_device_factories()

    def make(original):
        @functools.wraps(original)
        def __torch_function__(self, func, types, args=(), kwargs=None):
            try:
                name = names.get(func)
            except TypeError:  # an unhashable callable: none of the factories
                name = None
            if name is None or not hub.sessions or hub.thread.busy or (kwargs or {}).get("device") is not None:
                return original(self, func, types, args, kwargs)
            request = placements.default_device(name, self.device)
            return hub.intercept(request, lambda: original(self, func, types, args, kwargs))

        return __torch_function__

    installer.replace(torch.utils._device.DeviceContext, "__torch_function__", make)


# -- factories, `device=` calls, tensor moves ------------------------------------------------


def _placements(installer: _Installer) -> None:
    """Functions are replaced where they live (a module's `zeros` binding made before
    tracing is not, see README) and registered with TorchScript as the op they stand for;
    Tensor methods get a JudgedMethod."""
    hub = installer.hub
    builtins = _torchscript_builtins()
    for found in placements.placements():
        if found.method:
            installer.replace(found.owner, found.attribute, lambda original, found=found: JudgedMethod(original, _judged(hub, found, original)))
            continue
        installer.replace(found.owner, found.attribute, lambda original, found=found: _judged(hub, found, original))
        op = builtins.get(id(found.original))
        if op is not None:
            wrapper = getattr(found.owner, found.attribute)
            builtins[id(wrapper)] = op
            installer.patches.append(TableEntry(builtins, id(wrapper)))


def _judged(hub, found: placements.Placement, original):
    """`original`, judged first: its hot path is a few attribute reads and the judge."""
    judge, takes_types, thread = found.judge, found.takes_types, hub.thread

    @functools.wraps(original)
    def call(*args, **kwargs):
        if not hub.sessions or thread.busy or _is_compiling():
            return original(*args, **kwargs)
        if takes_types:
            args = tuple(legacy.unwrap(a) for a in args)
            kwargs = {k: legacy.unwrap(v) for k, v in kwargs.items()}
        request = judge(args, kwargs)
        if request is None:
            return original(*args, **kwargs)
        same = args[0] if args and isinstance(args[0], torch.Tensor) else None
        return hub.intercept(request, lambda: original(*args, **kwargs), same)

    return call


def _torchscript_builtins() -> dict:
    """TorchScript's table of the Python functions it compiles as ops, keyed by `id()`
    (a private table; empty when this torch has none). A wrapped `torch.zeros` must be
    in it, or `torch.jit.script` fails on code that calls it."""
    try:
        from torch.jit import _builtins

        return _builtins._get_builtin_table()
    except (ImportError, AttributeError):
        return {}


# -- DL009: CUDA_VISIBLE_DEVICES after CUDA initialised -------------------------------------


def _visible_devices(installer: _Installer) -> None:
    hub = installer.hub
    for name in catalog.api("DL009", "initialisers", []):
        found = resolve(name)
        if found is None:
            continue

        def make(original):
            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                if hub.sessions and "cuda-init" not in hub.sites:
                    hub.note_site("cuda-init")
                return original(*args, **kwargs)

            return wrapper

        installer.replace(found[0], found[1], make)

    def judge(args, kwargs):
        key, value = _argument(args, kwargs, None, 0), _argument(args, kwargs, None, 1)
        if key not in ("CUDA_VISIBLE_DEVICES", b"CUDA_VISIBLE_DEVICES"):
            return None
        before = os.environ.get("CUDA_VISIBLE_DEVICES")  # os.environ updates its mapping after putenv
        if before is not None and before == (value.decode() if isinstance(value, bytes) else value):
            return None  # a launcher copying the environment it was given changes nothing
        init = hub.sites.get("cuda-init")
        if init is None and not torch.cuda.is_initialized():
            return None
        at = f" (at {init.at})" if init else ""
        shown = value.decode() if isinstance(value, bytes) else value
        return Request(
            0,
            "DL009",
            f"`CUDA_VISIBLE_DEVICES={shown}` is set after CUDA may have been initialised{at}: the driver has read it already, so cuda:0 is still physical GPU0",
            "set CUDA_VISIBLE_DEVICES before the process starts (`CUDA_VISIBLE_DEVICES=1 python ...`), or pass a device instead",
            always=True,
        )

    installer.wrap(os, "putenv", judge)


# -- threads -----------------------------------------------------------------------------


def _threads(installer: _Installer) -> None:
    """Every thread started while tracing runs on behalf of the line that started it (a
    request in it with no user frame is blamed there), and in the thorough mode enters the
    function mode. Only positions are recorded, once per thread."""
    hub = installer.hub

    def make(original):
        @functools.wraps(original)
        def start(self):
            if hub.sessions:
                handed = hub.handed_over(sys._getframe(1))
                own = vars(self).get("run", _ABSENT)
                run = self.run

                def run_traced():
                    saved = hub.work_for(handed)
                    try:
                        with hub.thread_scope():
                            run()
                    finally:
                        hub.done_working(saved)
                        if own is _ABSENT:
                            vars(self).pop("run", None)
                        else:
                            self.run = own

                self.run = run_traced
            return original(self)

        return start

    installer.replace(threading.Thread, "start", make)


def _executors(installer: _Installer) -> None:
    """A task submitted to a thread pool (`submit`, and `map`, which submits each item) runs
    on behalf of the line that submitted it: thread pools reuse their threads, so the
    thread's own start is not enough."""
    hub = installer.hub

    def make(original):
        @functools.wraps(original)
        def submit(self, fn, /, *args, **kwargs):
            if not hub.sessions:
                return original(self, fn, *args, **kwargs)
            handed = hub.handed_over(sys._getframe(1))

            def task(*args, **kwargs):
                saved = hub.work_for(handed)
                try:
                    return fn(*args, **kwargs)
                finally:
                    hub.done_working(saved)

            return original(self, task, *args, **kwargs)

        return submit

    installer.replace(concurrent.futures.ThreadPoolExecutor, "submit", make)


_ABSENT = object()


_TABLES = (
    _device_contexts,  # first: torch caches its default-device factories by identity on first use
    _placements,
    _current_device_calls,
    _stream_methods,
    _event_methods,
    _selectors,
    _legacy_constructors,
    _loaders,
    _restore_hook,
    _storages,
    _data_parallel,
    _setters,
    distributed.install,
    _visible_devices,
    _threads,
    _executors,
)


def install(hub) -> list:
    installer = _Installer(hub)
    try:
        for table in _TABLES:
            table(installer)
    except BaseException:
        uninstall(installer.patches)
        raise
    return installer.patches


def uninstall(patches: list) -> None:
    for patch in reversed(patches):
        patch.undo()
