"""Process groups and collectives: where torch.distributed puts work the program did not place.

- `init_process_group(device_id=...)` is judged like any device; where it was called is
  remembered, and whether it bound a device.
- A collective (`all_reduce`, `broadcast`, ...) runs on the device of its tensors: one on
  a GPU this rank may not use is DL104 (and the NCCL communicator it builds there).
- An object collective under NCCL stages its tensors on the current device (DL104 when
  that is not the rank's GPU).
- `barrier()` under NCCL without `device_ids` and without a bound device all-reduces a
  tensor on the current device (torch 2.8 and later; DL104 when that is not the rank's
  GPU) over a communicator on a device NCCL guesses from the global rank when no
  collective ran before (DL013).
- When a device NCCL chose by itself (a guess, the current device) is not the rank's
  GPU and the process group was made without `device_id`, `init_process_group` is
  reported too (DL013), at its own line: that is where the fix goes.

The names of the collectives are the catalog's (rules/DL104).
"""

from __future__ import annotations

import functools
import inspect
import linecache

import torch

from devlint import catalog
from devlint.runtime.devices import current_index, label, target, visible_count
from devlint.runtime.report import Leak
from devlint.runtime.requests import Request, placement
from devlint.runtime.resolve import resolve


class _ProcessGroups:
    """What the wrappers learnt about this process's default process group."""

    def __init__(self) -> None:
        self.init_site = None  # attribution.Frame of init_process_group
        self.device_id = None  # what it was given
        self.used: list[int] = []  # GPUs collectives ran on, in order (NCCL's barrier uses the first)
        self.reported: set = set()  # (session id, index) already reported at the init site


@functools.lru_cache(maxsize=None)
def _signature(function):
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _bound(function, args, kwargs) -> dict:
    signature = _signature(function)
    if signature is None:
        return dict(kwargs)
    try:
        return signature.bind_partial(*args, **kwargs).arguments
    except TypeError:
        return dict(kwargs)


def _rank() -> str:
    dist = torch.distributed
    return f"rank {dist.get_rank()}" if dist.is_initialized() else "this process"


def _nccl(group) -> bool:
    dist = torch.distributed
    if not dist.is_initialized():
        return False
    try:
        return "nccl" in str(dist.get_backend(group)).lower()
    except (RuntimeError, ValueError):
        return False


def _tensor_device(bound: dict):
    """The Target of the first tensor argument (or first tensor of a list), else None."""
    for value in bound.values():
        if isinstance(value, (list, tuple)) and value:
            value = value[0]
        if hasattr(value, "device") and not isinstance(value, torch.device):
            return target(value)
    return None


def install(installer) -> None:
    if not torch.distributed.is_available():
        return
    hub, state = installer.hub, _ProcessGroups()

    def wrap_each(names, make_judge):
        done = set()
        for name in names:
            found = resolve(name)
            if found is None or not callable(found[2]) or (id(found[0]), found[1]) in done:
                continue
            done.add((id(found[0]), found[1]))
            _replace(installer, hub, found[0], found[1], make_judge(name, found[2]))

    def init_judge(name, function):
        def judge(args, kwargs):
            hub.note_site("process-group")
            state.init_site = hub.sites["process-group"]
            device_id = _bound(function, args, kwargs).get("device_id")
            state.device_id, state.used = device_id, []
            where = target(device_id)
            short = name.rsplit(".", 1)[-1]
            return [placement(where, f"`{short}(device_id={device_id!r})`", "DL013", "pass `device_id=torch.device({device})`")] if where else []

        return judge

    def collective_judge(name, function):
        short = name.rsplit(".", 1)[-1]

        def judge(args, kwargs):
            where = _tensor_device(_bound(function, args, kwargs))
            if where is None:
                return []
            if where.index not in state.used:
                state.used.append(where.index)
            return [Request(
                where.index,
                "DL104",
                f"`{short}()` on {_rank()} runs on {label(where.index)}, where its tensors are (and builds a communicator there)",
                "move the tensors to the rank's own GPU first: `.to({device})`",
                "context",
            )]

        return judge

    def object_judge(name, function):
        short = name.rsplit(".", 1)[-1]

        def judge(args, kwargs):
            if not _nccl(_bound(function, args, kwargs).get("group")):
                return []
            index = current_index()
            request = Request(
                index,
                "DL104",
                f"`{short}()` under NCCL on {_rank()} stages its objects as tensors on the current device, {label(index)}",
                "call `torch.cuda.set_device({device})` before the first collective",
                "context",
                via_current=True,
            )
            _report_init(hub, state, index)
            return [request]

        return judge

    def barrier_judge(name, function):
        def judge(args, kwargs):
            return _judge_barrier(hub, state, _bound(function, args, kwargs))

        return judge

    wrap_each(catalog.api("DL013", "init", []), init_judge)
    wrap_each(catalog.api("DL013", "barrier", []), barrier_judge)
    wrap_each(catalog.api("DL104", "collectives", []), collective_judge)
    wrap_each(catalog.api("DL104", "object_collectives", []), object_judge)


def _replace(installer, hub, owner, name: str, judge) -> None:
    """Like `_Installer.wrap`, for a judge that may make several requests: all but the
    last are recorded before the call, the last one is the call's own."""

    def make(original):
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if not hub.sessions or hub.thread.busy:
                return original(*args, **kwargs)
            requests = judge(args, kwargs)
            for request in requests[:-1]:
                hub.intercept(request, lambda: None)
            return hub.intercept(requests[-1] if requests else None, lambda: original(*args, **kwargs))

        return wrapper

    installer.replace(owner, name, make)


def _judge_barrier(hub, state: _ProcessGroups, bound: dict) -> list[Request]:
    dist = torch.distributed
    ids = bound.get("device_ids")
    if ids:
        where = target(ids[0])
        return [placement(where, f"`barrier(device_ids={ids!r})`", "DL013", "pass `device_ids=[index]` with the GPU index the program was given")] if where else []
    group = bound.get("group") or dist.group.WORLD
    if not _nccl(group):
        return []
    bound_device = getattr(group, "bound_device_id", None) or getattr(dist.distributed_c10d._get_default_group(), "bound_device_id", None)
    if bound_device is not None:
        return []  # NCCL uses the device the process group was bound to
    rank, current = dist.get_rank(), current_index()
    requests = []
    if state.used:
        communicator = state.used[0]
    else:
        count = visible_count()
        communicator = rank % count if count > 0 else 0
        init = state.init_site
        at = f" (called at {init.at})" if init else ""
        requests.append(Request(
            communicator,
            "DL013",
            f"`barrier()` without `device_ids` on a process group with no device: NCCL guesses the GPU from the global rank ({rank} -> {label(communicator)})",
            f"pass `device_id=torch.device({{device}})` to `init_process_group`{at}, or `device_ids=[index]` to `barrier()`",
            "context",
        ))
    if current != communicator or not requests:
        requests.insert(0, Request(
            current,
            "DL104",
            f"`barrier()` without `device_ids` on rank {rank} all-reduces a tensor on the current device, {label(current)}",
            "call `torch.cuda.set_device({device})` after starting, or pass `device_ids=[index]` to `barrier()`",
            "context",
            via_current=True,
        ))
    chosen = {current} if state.used else {current, communicator}
    for index in sorted(chosen):
        _report_init(hub, state, index)
    return requests


def _report_init(hub, state: _ProcessGroups, index: int) -> None:
    """DL013 at `init_process_group` when a device NCCL chose itself is not the rank's,
    recorded straight away: the site is not on the stack, so it is no request."""
    site = state.init_site
    if site is None or state.device_id is not None:
        return
    for session in hub.sessions:
        if index in session.allowed or (id(session), index) in state.reported:
            continue
        state.reported.add((id(session), index))
        session.recorder.add(Leak(
            code="DL013",
            message=f"`init_process_group` without `device_id`: a collective later ran on {label(index)}, a device NCCL chose by itself, not this rank's GPU",
            filename=site.filename,
            line=site.line,
            function=site.function,
            device=label(index),
            kind="context",
            suggestion=f"pass `device_id=torch.device({session.allowed.first!r})` to `init_process_group` (and call `torch.cuda.set_device` with it)",
            source_line=linecache.getline(site.filename, site.line).strip() or None,
        ))
