"""Calls that place tensors, and what each one asks for: factories, `device=`, tensor moves.

Both tracing modes judge these calls with the same judges: the cheap mode wraps each call
where it lives (patches.py), the thorough mode's function mode looks the judge up by the
function torch hands it (mode.py). The calls come from the catalog: DL011's factories,
which use the default device when `device` is left out, and DL002's `device_keyword` calls
(`zeros_like`, `.new_zeros`, ...), which follow their input then. The tensor moves
(`.cuda()`, `.to()`, `.type()`) have judges of their own below.

A judge takes the call's `(args, kwargs)` (a method's args start with the tensor) and
returns a Request, or None when the call asks for no GPU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

from devlint import catalog
from devlint.runtime import legacy
from devlint.runtime.devices import Target, current_index, target
from devlint.runtime.requests import Request, placement
from devlint.runtime.resolve import resolve

# The default tensor type's device type ("cuda" after `set_default_tensor_type(torch.cuda.FloatTensor)`).
_default_type_device = getattr(torch._C, "_get_default_device", lambda: "cpu")


@dataclass(frozen=True)
class Placement:
    name: str  # as the catalog spells it: `torch.zeros`, `torch.Tensor.new_zeros`
    owner: object  # the module or class that holds it
    attribute: str
    original: object  # torch's own function, resolved before anything was patched
    judge: Callable  # (args, kwargs) -> Request | None
    takes_types: bool = False  # the call takes tensor types: torch must get the real ones, not devlint's stand-ins

    @property
    def method(self) -> bool:
        return isinstance(self.owner, type)


def show(spec) -> str:
    """A device argument as the message quotes it."""
    if isinstance(spec, torch.device):
        return f'torch.device("{spec}")'
    if isinstance(spec, torch.Tensor):
        return "<tensor>"
    return repr(spec)


def call_name(name: str) -> str:
    """How the user wrote the call: `torch.zeros_like`, `.new_zeros` (a Tensor method)."""
    return "." + name.rsplit(".", 1)[1] if name.startswith("torch.Tensor.") else name


def device_keyword(name: str, spec) -> Request | None:
    where = target(spec)
    if where is None:
        return None
    return placement(where, f"`{name}(device={show(spec)})`", "DL002", "pass `device={device}`")


def default_device(name: str, device) -> Request | None:
    """A factory called without `device` while the default device is `device`."""
    where = target(device)
    if where is None:
        return None
    how = f", which is the current device, cuda:{where.index}" if where.via_current else ""
    return Request(
        where.index,
        "DL010",
        f"`{name}()` without `device` uses the default device {show(str(device))}{how}",
        "pass `device={device}`, or set an indexed default: `torch.set_default_device({device})`",
        via_current=where.via_current,
    )


def _factory(name: str):
    def judge(args, kwargs):
        spec = kwargs.get("device")
        if spec is not None:
            return device_keyword(name, spec)
        # A `torch.device(...)` context or `set_default_device` is judged where torch fills in
        # the device (patches.py); what is left is a CUDA default tensor type.
        if _default_type_device() != "cuda":
            return None
        return default_device(name, "cuda")  # noqa: DL002 - the default the factory uses, chosen by the program

    return judge


def _keyword(name: str):
    shown = call_name(name)

    def judge(args, kwargs):
        spec = kwargs.get("device")
        return None if spec is None else device_keyword(shown, spec)

    return judge


def _tensor_cuda(args, kwargs):
    spec = args[1] if len(args) > 1 else kwargs.get("device")
    where = Target(current_index(), True) if spec is None else target(spec)
    if where is None:
        return None
    call = "`.cuda()`" if spec is None else f"`.cuda({show(spec)})`"
    return placement(where, call, "DL001", "use `.to({device})`")


def _tensor_to(args, kwargs):
    spec = kwargs.get("device") if kwargs else None
    if spec is None:
        first = args[1] if len(args) > 1 else None
        if first is None or type(first) is torch.dtype:  # `.to(dtype)`, the common call: no device
            spec = kwargs.get("other") if kwargs else None
        elif isinstance(first, (str, int, torch.device, torch.Tensor)) and not isinstance(first, bool):
            spec = first
        if spec is None:
            return None
    where = target(spec)
    if where is None:
        return None
    return placement(where, f"`.to({show(spec)})`", "DL002", "use `.to({device})`")


def tensor_type(args, kwargs):
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


_MOVES = {"torch.Tensor.cuda": _tensor_cuda, "torch.Tensor.to": _tensor_to, "torch.Tensor.type": tensor_type}


@functools.lru_cache(maxsize=1)
def placements() -> tuple[Placement, ...]:
    """Every call judged here, with torch's own function. Resolved once, by the first
    install, before anything is patched."""
    judges = dict(_MOVES)
    judges.update({name: _factory(name) for name in catalog.api("DL011", "factories", [])})
    judges.update({name: _keyword(name) for name in catalog.api("DL002", "device_keyword", [])})
    found = []
    for name, judge in judges.items():
        resolved = resolve(name)
        if resolved is not None:
            owner, attribute, original = resolved
            found.append(Placement(name, owner, attribute, original, judge, takes_types=judge is tensor_type))
    return tuple(found)


@functools.lru_cache(maxsize=1)
def default_device_factories() -> dict:
    """{torch's own function: its catalog name} for the factories a default device applies to."""
    from torch.utils._device import _device_constructors

    rewritten = _device_constructors()
    return {p.original: p.name for p in placements() if p.original in rewritten}
