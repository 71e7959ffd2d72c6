"""Devices: which GPUs a run may use, and which GPU a request lands on.

Indices are in the program's own numbering (after `CUDA_VISIBLE_DEVICES`), as torch
sees them. Nothing here may touch a GPU: the calling thread's current device is read
from the runtime only once torch has initialised CUDA (before that it is 0 in every
thread), and devices are counted through NVML or the environment, never `cuInit`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch

_CUDA_INDEXED = re.compile(r"cuda:(\d+)")


class DeviceError(ValueError):
    """A tracer setting (the allowed devices, a DEVLINT_* variable) that cannot be used: a usage error."""


@dataclass(frozen=True)
class Allowed:
    """The GPUs a run may use; the CPU (and meta, ...) is always allowed."""

    indices: frozenset[int]

    def __contains__(self, index: int) -> bool:
        return index in self.indices

    @property
    def labels(self) -> list[str]:
        return [f"cuda:{i}" for i in sorted(self.indices)] or ["cpu"]

    @property
    def first(self) -> str:
        return self.labels[0]


class Target(NamedTuple):
    """Where a request lands: a GPU index, and whether the index came from the
    calling thread's current device (`"cuda"`, `.cuda()`, a device left out).
    A named tuple: built on hot paths, where a frozen dataclass costs microseconds."""

    index: int
    via_current: bool


def parse_allowed(specs=None, environ=os.environ) -> Allowed:
    """`--device` values (or `DEVLINT_DEVICE`, comma or space separated) as an Allowed set.

    `auto` is `cuda:$LOCAL_RANK` under torchrun (`cuda:0` when CUDA_VISIBLE_DEVICES gives
    the rank one GPU), else the one visible GPU; `cpu` allows no GPU.
    """
    if isinstance(specs, (str, int, torch.device)):
        specs = [specs]
    values = [str(s) for s in specs or ()]
    if not values:
        values = environ.get("DEVLINT_DEVICE", "auto").replace(",", " ").split() or ["auto"]
    indices: set[int] = set()
    for value in values:
        indices |= _parse_one(value.strip().lower(), environ)
    return Allowed(frozenset(indices))


def _parse_one(value: str, environ) -> set[int]:
    if value == "cpu":
        return set()
    if value == "auto":
        return {_auto_index(environ)}
    if value.isdigit():
        return {int(value)}
    match = _CUDA_INDEXED.fullmatch(value)
    if match:
        return {int(match.group(1))}
    if value == "cuda":
        raise DeviceError("`cuda` names no GPU: give an index (`cuda:1`) or `auto`")
    raise DeviceError(f"`{value}` is not a device: use `cuda:N`, `N`, `auto` or `cpu`")


def _auto_index(environ) -> int:
    rank = environ.get("LOCAL_RANK")
    if rank is not None:
        if not rank.isdigit():
            raise DeviceError(f"--device auto: LOCAL_RANK={rank!r} is not a GPU index")
        ids = visible_ids(environ)
        return 0 if ids is not None and len(ids) == 1 else int(rank)  # a launcher that gives each rank one GPU
    count = visible_count(environ)
    if count == 1:
        return 0
    seen = "no GPU is visible" if count == 0 else f"{count} GPUs are visible" if count > 0 else "the GPUs cannot be counted"
    raise DeviceError(f"--device auto needs LOCAL_RANK (torchrun) or exactly one visible GPU, but {seen}: name the device, e.g. --device cuda:1")


def visible_count(environ=os.environ) -> int:
    """How many GPUs the program can see, without initialising CUDA; -1 when unknown."""
    if torch.cuda.is_initialized():
        return torch.cuda.device_count()
    ids = visible_ids(environ)
    if ids is not None:
        return len(ids)
    count_nvml = getattr(torch.cuda, "_device_count_nvml", None)
    return count_nvml() if count_nvml is not None else -1


def visible_ids(environ=os.environ) -> list[str] | None:
    """`CUDA_VISIBLE_DEVICES` as the driver reads it (up to the first bad entry); None when unset."""
    raw = environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    ids = []
    for item in raw.split(","):
        item = item.strip()
        if not item or not (item.isdigit() or item.startswith(("GPU-", "MIG-"))):
            break
        ids.append(item)
    return ids


def current_index() -> int:
    """The calling thread's current CUDA device, read without creating a context."""
    if torch.cuda.is_initialized():
        return torch._C._cuda_getDevice()
    return 0


def target(spec) -> Target | None:
    """The GPU a device-like value lands on now, or None when it is not a CUDA device.

    Accepts what torch accepts as a device (str, int, torch.device) and things that carry
    one (tensors, storages, streams). An unindexed `cuda` resolves to the current device.
    """
    if spec is None or isinstance(spec, bool):
        return None
    if isinstance(spec, str):
        found = _STRINGS.get(spec, _UNPARSED)
        if found is _UNPARSED:
            found = _parse_string(spec)
            if len(_STRINGS) < 1024:
                _STRINGS[spec] = found
        return Target(current_index(), True) if found is _CURRENT else found
    if isinstance(spec, int):
        return Target(spec, False) if spec >= 0 else None
    if isinstance(spec, bytes):
        return target(spec.decode("ascii", "replace"))
    if isinstance(spec, torch.device):
        if spec.type != "cuda":
            return None
        return Target(spec.index, False) if spec.index is not None else Target(current_index(), True)
    device = getattr(spec, "device", None)
    if isinstance(device, torch.device):  # a tensor, storage or stream
        return target(device)
    return None


_UNPARSED, _CURRENT = object(), object()
_STRINGS: dict = {}  # device string -> Target, None or _CURRENT: a program spells its devices a few ways, each parsed once


def _parse_string(spec: str):
    text = spec.strip().lower()
    if text == "cuda":
        return _CURRENT
    match = _CUDA_INDEXED.fullmatch(text)
    return Target(int(match.group(1)), False) if match else None


def label(index: int) -> str:
    return f"cuda:{index}"
