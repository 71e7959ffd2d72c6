"""The function mode: tensor factories and tensor moves, seen with their raw arguments.

A TorchFunctionMode sees `torch.zeros(2)` with `device` absent and `x.to("cuda")`
with the unindexed string, before torch resolves either to the current device, so
it can tell "left out" and "no index" from an explicit choice. Module moves
(`model.to("cuda")`, `model.cuda()`) reach it as one `Tensor.to`/`Tensor.cuda` per
parameter and buffer. Modes are per thread: the hub pushes one in the thread that
starts tracing and one in every thread started while tracing.

The factory list is the catalog's (DL011); any other call given a `device=` keyword
(`zeros_like`, `new_zeros`, ...) is judged on that keyword. Every other call costs one
dict lookup.
"""

from __future__ import annotations

import functools

import torch
from torch.overrides import TorchFunctionMode, _get_current_function_mode_stack, _pop_mode, _push_mode
from torch.utils import _device

from devlint import catalog
from devlint.runtime import legacy
from devlint.runtime.devices import Target, current_index, target
from devlint.runtime.patches import resolve
from devlint.runtime.requests import Request, placement

# Under torch.compile the mode must stay out of the traced graph (torch < 2.3 has no such check).
_is_compiling = getattr(torch.compiler, "is_compiling", lambda: False)


def _show(spec) -> str:
    if isinstance(spec, torch.device):
        return f'torch.device("{spec}")'
    if isinstance(spec, torch.Tensor):
        return "<tensor>"
    return repr(spec)


def _default_device():
    """The default device a factory without `device` uses now: a `torch.device(...)`
    context or `set_default_device` below this mode, or a CUDA default tensor type."""
    if torch._C._len_torch_function_stack():  # this mode is off the stack while it judges
        for mode in reversed(_get_current_function_mode_stack()):
            if isinstance(mode, _device.DeviceContext):
                return mode.device
    get_default = getattr(torch._C, "_get_default_device", None)
    if get_default is not None and get_default() == "cuda":
        return "cuda"  # noqa: DL002 - reports torch's default device, chooses none
    return None


def _call_name(func) -> str:
    """How the user wrote the call: `torch.zeros_like`, `.new_zeros`."""
    name = getattr(func, "__name__", "call")
    return f".{name}" if getattr(func, "__qualname__", "").startswith(("TensorBase.", "Tensor.")) else f"torch.{name}"


def _device_keyword(name: str, spec) -> Request | None:
    where = target(spec)
    if where is None:
        return None
    return placement(where, f"`{name}(device={_show(spec)})`", "DL002", "pass `device={device}`")


def _factory(name: str, hub):
    def judge(args, kwargs):
        spec = kwargs.get("device")
        if spec is None:
            default = _default_device()
        elif spec is hub.thread.default_device:
            default = spec  # filled in by a `torch.device(...)` context entered above this mode
        else:
            return _device_keyword(name, spec)
        where = target(default) if default is not None else None
        if where is None:
            return None
        how = f", which is the current device, cuda:{where.index}" if where.via_current else ""
        return Request(
            where.index,
            "DL010",
            f"`{name}()` without `device` uses the default device {_show(str(default))}{how}",
            "pass `device={device}`, or set an indexed default: `torch.set_default_device({device})`",
            via_current=where.via_current,
        )

    return judge


def _tensor_cuda(args, kwargs):
    spec = args[1] if len(args) > 1 else kwargs.get("device")
    where = Target(current_index(), True) if spec is None else target(spec)
    if where is None:
        return None
    call = "`.cuda()`" if spec is None else f"`.cuda({_show(spec)})`"
    return placement(where, call, "DL001", "use `.to({device})`")


def _tensor_to(args, kwargs):
    spec = kwargs.get("device")
    if spec is None and len(args) > 1 and isinstance(args[1], (str, int, torch.device, torch.Tensor)) and not isinstance(args[1], bool):
        spec = args[1]
    if spec is None and isinstance(kwargs.get("other"), torch.Tensor):
        spec = kwargs["other"]
    where = target(spec)
    if where is None:
        return None
    return placement(where, f"`.to({_show(spec)})`", "DL002", "use `.to({device})`")


def _tensor_type(args, kwargs):
    kind = args[1] if len(args) > 1 else kwargs.get("dtype")
    if not legacy.is_cuda_type(kind) or args[0].is_cuda:
        return None  # a tensor already on a GPU keeps its device under .type()
    name = kind if isinstance(kind, str) else f"torch.cuda.{legacy.unwrap(kind).__name__}"
    index = current_index()
    return Request(
        index,
        "DL003",
        f"`.type({name!r})` on a CPU tensor moves it to the current device, cuda:{index} (a type name has no device index)",
        "use `.type_as(t)` with a tensor `t` on the target device, or `.to(device={device}, dtype=...)`",
        via_current=True,
    )


@functools.lru_cache(maxsize=1)
def _judges(hub) -> dict:
    """The calls the mode judges, built once: every thread's mode shares them."""
    judges = {torch.Tensor.cuda: _tensor_cuda, torch.Tensor.to: _tensor_to, torch.Tensor.type: _tensor_type}
    for name in catalog.api("DL011", "factories", []):
        found = resolve(name)
        if found is not None:
            judges[found[2]] = _factory(name, hub)
    return judges


class LeakMode(TorchFunctionMode):
    def __init__(self, hub) -> None:
        super().__init__()
        self.hub = hub
        self.live = True  # false once tracing stopped; a mode left in a running thread then passes through
        self.judges = _judges(hub)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        if not self.live:
            return func(*args, **kwargs)
        judge = self.judges.get(func)
        if judge is None:
            if kwargs.get("device") is None:
                return func(*args, **kwargs)
            name = _call_name(func)
            judge = lambda a, k: _device_keyword(name, k["device"])  # noqa: E731
        if _is_compiling():
            return func(*args, **kwargs)
        if func is torch.Tensor.type:
            args = tuple(legacy.unwrap(a) for a in args)
            kwargs = {k: legacy.unwrap(v) for k, v in kwargs.items()}
        request = judge(args, kwargs)
        if request is None:  # not a GPU request
            return func(*args, **kwargs)
        same = args[0] if args and isinstance(args[0], torch.Tensor) else None
        return self.hub.intercept(request, lambda: func(*args, **kwargs), same)


def push(hub) -> LeakMode:
    mode = LeakMode(hub)
    _push_mode(mode)
    return mode


def remove(mode: LeakMode | None) -> None:
    """Take `mode` off this thread's mode stack, wherever it is, leaving the others in order.
    Always disables it: a mode that cannot be reached from here passes through from now on."""
    if mode is None:
        return
    mode.live = False
    stack = [_pop_mode() for _ in range(torch._C._len_torch_function_stack())]  # top first
    for other in reversed(stack):
        if other is not mode:
            _push_mode(other)
