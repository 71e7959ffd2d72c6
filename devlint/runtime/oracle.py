"""What the GPUs say: which have a CUDA context (driver), and this process's memory (NVML).

`torch._C._cuda_hasPrimaryContext(i)` asks the driver whether device i has a primary
context without creating one. It needs CUDA initialised (it counts devices), so before
torch initialises CUDA the answer is "no context", which is true of torch's contexts.
NVML gives each process's memory per physical GPU, read through `pynvml` (the `nvml`
extra) when it is importable; PIDs from NVML are host PIDs, so inside a container they
may not match this process, and the report says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from devlint.runtime import devices


def _has_context(index: int) -> bool:
    return bool(torch._C._cuda_hasPrimaryContext(index))


def can_ask() -> bool:
    return torch.cuda.is_initialized() and hasattr(torch._C, "_cuda_hasPrimaryContext")


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
        new = frozenset(i for i in unseen if _has_context(i))
        if new:
            self.unseen = [i for i in unseen if i not in new]
        return new


_NONE: frozenset[int] = frozenset()


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
    initialised = can_ask()
    nvml, notes = _nvml_snapshot()
    physical = _physical_indices(count, nvml)
    usages = []
    for index in range(count):
        context = initialised and _has_context(index)
        reserved = torch.cuda.memory_reserved(index) if initialised and context else 0
        memory = None
        if nvml is not None and physical[index] is not None:
            memory = nvml["memory"].get(physical[index], 0)
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
        return None, ["NVML is not available (install devlint[nvml]): per-process GPU memory not measured"]
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
