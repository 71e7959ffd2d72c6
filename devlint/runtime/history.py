"""The CUDA caching allocator's own record: the line behind GPU allocations no hook saw.

A call the tracer cannot wrap (a factory bound before tracing began, C++ code) still
allocates through torch's caching allocator, which can keep a Python stack for each
allocation (`torch.cuda.memory._record_memory_history`). Recording costs every allocation
on every device (torch cannot record one device only) about as much as the function mode
costs every op, so it stays off until the context oracle finds a context on a disallowed
GPU that no intercepted call asked for (DL101): then the program is known to leak, and
the allocations that follow on disallowed GPUs are read back when a session stops and
reported at their innermost user line (DL106). What happened before recording began (the
allocation that created the context) is not in it.

Recording never starts before the program initialised CUDA (starting it would initialise
CUDA), while the program records history itself, or during CUDA-graph capture; it is
switched off when tracing stops.
"""

from __future__ import annotations

import torch

from devlint.runtime import attribution, oracle
from devlint.runtime.attribution import Frame

MAX_ENTRIES = 10_000  # trace entries kept per device (a ring: the latest win)


class AllocatorHistory:
    def __init__(self) -> None:
        self.recording = False  # devlint switched recording on (and must switch it off)

    def start(self) -> None:
        if self.recording or not oracle.can_ask() or not hasattr(torch._C, "_cuda_isHistoryEnabled"):
            return
        if not torch.cuda.is_initialized():
            # CUDA started in C++ (a CUDAGraph, pinned memory) without torch's own lazy init:
            # recording then would initialise it under the program, and on torch 2.11 a
            # CUDAGraph made before it crashed the process at exit (H100, benchmarks/cuda_probe.py).
            return
        try:
            if torch._C._cuda_isHistoryEnabled() or torch.cuda.is_current_stream_capturing():
                return  # the program's own recording, or a graph being captured: leave both alone
            torch.cuda.memory._record_memory_history("all", context="alloc", stacks="python", max_entries=MAX_ENTRIES)
        except (RuntimeError, TypeError, AttributeError):
            return  # a torch without this API, or an allocator that cannot record (cudaMallocAsync)
        self.recording = True

    def allocations(self, disallowed) -> list[tuple[Frame, int, int, int]]:
        """(site, device, count, bytes) of the recorded allocations on the devices for
        which `disallowed(index)` is true, by site: the innermost user frame."""
        if not self.recording:
            return []
        try:
            traces = torch.cuda.memory._snapshot().get("device_traces", [])
        except (RuntimeError, AttributeError):
            return []
        found: dict[tuple[Frame, int], list[int]] = {}
        for device, entries in enumerate(traces):
            if not disallowed(device):
                continue
            for entry in entries:
                if entry.get("action") == "alloc":
                    totals = found.setdefault((_site(entry.get("frames", [])), device), [0, 0])
                    totals[0] += 1
                    totals[1] += entry.get("size", 0)
        return [(site, device, count, nbytes) for (site, device), (count, nbytes) in found.items()]

    def stop(self) -> None:
        if self.recording:
            self.recording = False
            try:
                torch.cuda.memory._record_memory_history(None)
            except (RuntimeError, TypeError, AttributeError):
                pass


def _site(frames: list[dict]) -> Frame:
    """The innermost user frame of a recorded stack (innermost first), else the innermost frame."""
    shown = [Frame(attribution.absolute(f.get("filename", "<unknown>")), f.get("line", 0), f.get("name", "")) for f in frames]
    return next((f for f in shown if attribution.kind(f.filename) == "user"), shown[0] if shown else Frame("<unknown>", 0, ""))
