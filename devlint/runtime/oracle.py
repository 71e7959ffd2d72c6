"""What the GPUs say: which have a CUDA context (driver), and this process's memory (NVML).

`torch._C._cuda_hasPrimaryContext(i)` asks the driver whether device i has a primary
context without creating one; torch 2.15 adds `torch.cuda._primary_context_devices()`,
which answers for every device at once and is used where present. Both count devices,
which initialises the driver (and freezes CUDA_VISIBLE_DEVICES), so they are asked only
once someone else has initialised it: torch in Python (`torch.cuda.is_initialized()`), or
a call the tracer knows initialises CUDA in C++ without telling Python (pinned memory,
CUDA graphs: `driver_started()`), or NVML listing this process on a GPU.
NVML gives each process's memory per physical GPU, read through `pynvml` (the `nvml`
extra) when it is importable, else through `nvidia-smi`; PIDs from NVML are host PIDs,
so inside a container they may not match this process, and the report says so.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from dataclasses import dataclass

import torch

from devlint.runtime import devices

_driver = {"started": False}  # a call that initialises CUDA in C++ ran (Python's flag stays False)


def driver_started() -> None:
    """Called after a call that initialises CUDA in C++: from now on the driver may be asked."""
    _driver["started"] = True


def _has_context(index: int) -> bool:
    return bool(torch._C._cuda_hasPrimaryContext(index))


def can_ask() -> bool:
    # hasattr last: on a CPU build a failed lookup costs microseconds, and this runs around every judged call
    return (_driver["started"] or torch.cuda.is_initialized()) and hasattr(torch._C, "_cuda_hasPrimaryContext")


def context_devices(candidates) -> frozenset[int]:
    """Which of `candidates` hold a primary context: one question to the driver where torch
    has `_primary_context_devices` (2.15+), else one per device."""
    every = getattr(torch.cuda, "_primary_context_devices", None)
    if every is not None:
        try:
            held = _as_indices(every())
        except (RuntimeError, TypeError):
            held = None
        if held is not None:
            return frozenset(i for i in candidates if i in held)
    return frozenset(i for i in candidates if _has_context(i))


def _as_indices(answer) -> frozenset[int] | None:
    """The devices in an answer of `_primary_context_devices`: indices, devices, or one flag per device."""
    items = list(answer)
    if all(isinstance(item, bool) for item in items):
        return frozenset(i for i, flag in enumerate(items) if flag)
    indices = set()
    for item in items:
        if isinstance(item, int):
            indices.add(item)
        elif isinstance(item, torch.device) and item.type == "cuda" and item.index is not None:
            indices.add(item.index)
        else:
            return None
    return frozenset(indices)


class ContextOracle:
    """Polls for contexts that appeared since the last poll; devices that already have one
    are not asked again, so polling costs nothing once every GPU is accounted for."""

    def __init__(self) -> None:
        self.unseen: list[int] | None = None  # devices with no context yet; known once CUDA is initialised

    def poll(self) -> frozenset[int]:
        """Runs around every intercepted call: cheap before CUDA is initialised and once
        every GPU is accounted for."""
        unseen = self.unseen
        if unseen is None:
            if not can_ask():
                return _NONE
            unseen = self.unseen = list(range(torch.cuda.device_count()))
        if not unseen:
            return _NONE
        new = context_devices(unseen)
        if new:
            self.unseen = [i for i in unseen if i not in new]
        return new


_NONE: frozenset[int] = frozenset()


def any_context() -> bool:
    """Does any GPU hold a context of this process? Pinned host memory reuses one if so,
    and otherwise makes one on the current device."""
    return can_ask() and bool(context_devices(range(torch.cuda.device_count())))


@dataclass(frozen=True)
class GpuUsage:
    device: str  # in the program's numbering
    physical: int | None  # NVML index, None when CUDA_VISIBLE_DEVICES names it in a way we cannot map
    allowed: bool
    context: bool  # this process has a CUDA context there
    reserved: int  # bytes held by torch's caching allocator
    memory: int | None  # this process's memory there per NVML, None when unknown

    def to_json(self) -> dict:
        return {
            "device": self.device,
            "physical": self.physical,
            "allowed": self.allowed,
            "context": self.context,
            "reserved": self.reserved,
            "memory": self.memory,
        }


def gpu_usage(allowed: devices.Allowed) -> tuple[list[GpuUsage], list[str]]:
    """Every visible GPU with this process's context and memory there, and notes on what
    could not be measured. Reads only driver state and NVML: never creates a context."""
    count = max(devices.visible_count(), 0)
    nvml, notes = _nvml_snapshot()
    if nvml is not None and nvml["memory"]:
        driver_started()  # this process holds GPU memory: the driver is initialised
    initialised = can_ask()
    physical = _physical_indices(count, nvml)
    held = context_devices(range(count)) if initialised else frozenset()
    usages = []
    for index in range(count):
        memory = None
        if nvml is not None and physical[index] is not None:
            memory = nvml["memory"].get(physical[index], 0)
        context = index in held or bool(memory)  # memory of this process there is its context
        reserved = torch.cuda.memory_reserved(index) if initialised and context and torch.cuda.is_initialized() else 0
        usages.append(GpuUsage(devices.label(index), physical[index], index in allowed, context, reserved, memory))
    if nvml is not None and not nvml["memory"] and any(u.context for u in usages):
        notes.append(
            f"NVML lists no memory for PID {os.getpid()} although it has a CUDA context: "
            "PIDs are probably namespaced (a container without the host PID namespace), so per-process memory is unknown"
        )
        usages = [GpuUsage(u.device, u.physical, u.allowed, u.context, u.reserved, None) for u in usages]
    return usages, notes


def _physical_indices(count: int, nvml: dict | None) -> list[int | None]:
    """Logical index -> NVML index through CUDA_VISIBLE_DEVICES (indices or UUIDs)."""
    ids = devices.visible_ids()
    if ids is None:
        return list(range(count))
    uuids = nvml["uuids"] if nvml else {}
    mapped = []
    for item in ids[:count]:
        if item.isdigit():
            mapped.append(int(item))
        else:
            mapped.append(next((i for u, i in uuids.items() if u.startswith(item)), None))
    return mapped + [None] * (count - len(mapped))


def _nvml_snapshot() -> tuple[dict | None, list[str]]:
    """{"memory": {physical index: bytes of this PID}, "uuids": {uuid: index}}, or None."""
    try:
        import pynvml
    except ImportError:
        return _smi_snapshot()
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver, no GPU: the NVMLError family has many members
        return None, [f"NVML could not start ({exc}): per-process GPU memory not measured"]
    try:
        pid = os.getpid()
        memory, uuids = {}, {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuids[uuid.decode() if isinstance(uuid, bytes) else uuid] = index
            for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if process.pid == pid and process.usedGpuMemory:
                    memory[index] = memory.get(index, 0) + process.usedGpuMemory
        return {"memory": memory, "uuids": uuids}, []
    except Exception as exc:
        return None, [f"NVML query failed ({exc}): per-process GPU memory not measured"]
    finally:
        pynvml.nvmlShutdown()


SMI_TIMEOUT = 20.0


def _smi_snapshot() -> tuple[dict | None, list[str]]:
    """What `_nvml_snapshot` gives, read from `nvidia-smi` when pynvml is not installed."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None, ["NVML is not available (install devlint[nvml]): per-process GPU memory not measured"]
    try:
        gpus = _smi_rows(smi, "--query-gpu=index,uuid")
        apps = _smi_rows(smi, "--query-compute-apps=pid,gpu_uuid,used_memory")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return None, [f"nvidia-smi failed ({exc}): per-process GPU memory not measured"]
    uuids = {uuid: int(index) for index, uuid in gpus}
    pid, memory = os.getpid(), {}
    for process, uuid, used in apps:
        if process.isdigit() and int(process) == pid and uuid in uuids and used.isdigit():
            memory[uuids[uuid]] = memory.get(uuids[uuid], 0) + (int(used) << 20)  # MiB
    return {"memory": memory, "uuids": uuids}, []


def _smi_rows(smi: str, query: str) -> list[list[str]]:
    output = subprocess.run([smi, query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=SMI_TIMEOUT, check=True).stdout
    return [[cell.strip() for cell in row] for row in csv.reader(output.splitlines()) if row]
