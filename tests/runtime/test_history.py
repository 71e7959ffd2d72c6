"""The allocator's history, with the driver and torch's recording faked: off until a context
nobody asked for appears on a disallowed GPU, then each recorded allocation there is DL106
at its user line; never started before CUDA is initialised or over the program's own."""

import pytest
import torch
from rt_helpers import next_line

from devlint.runtime.history import AllocatorHistory
from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.usefixtures("tracing_mode")  # every test, in both tracing modes

TORCH_FRAME = {"filename": torch.__file__, "line": 1, "name": "zeros"}


@pytest.fixture
def allocator(monkeypatch):
    """torch's recording switch and snapshot: `calls` are the switch's calls, `traces` what
    the snapshot returns per device, `enabled` whether recording is on."""
    state = {"enabled": False, "calls": [], "traces": [[], []]}

    def record(enabled="all", **options):
        state["calls"].append((enabled, options))
        state["enabled"] = enabled is not None

    monkeypatch.setattr(torch._C, "_cuda_isHistoryEnabled", lambda: state["enabled"], raising=False)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    monkeypatch.setattr(torch.cuda.memory, "_record_memory_history", record)
    monkeypatch.setattr(torch.cuda.memory, "_snapshot", lambda: {"device_traces": state["traces"]})
    return state


def _allocation(line: int, size: int, action: str = "alloc") -> dict:
    return {"action": action, "size": size, "frames": [TORCH_FRAME, {"filename": __file__, "line": line, "name": "leaky"}]}


def test_recording_starts_at_an_unexplained_context_and_its_allocations_are_dl104(driver, allocator):
    with Tracer("cuda:1") as tracer:
        torch.cuda.synchronize(1)
        assert allocator["calls"] == []  # nothing unexplained yet: no cost
        driver.add(0)  # a call no hook saw made a GPU0 context
        line = next_line()
        torch.cuda.synchronize(1)  # the oracle finds it here
        assert allocator["calls"] == [("all", {"context": "alloc", "stacks": "python", "max_entries": 10_000})]
        allocator["traces"][0] = [_allocation(70, 512), _allocation(70, 512, "free_requested"), _allocation(70, 1024), _allocation(80, 16)]
        allocator["traces"][1] = [_allocation(90, 4096)]  # the allowed GPU: not a leak
    leaks = {(leak.code, leak.line): leak for leak in tracer.leaks()}
    assert sorted(leaks) == [("DL101", line), ("DL106", 70), ("DL106", 80)]
    assert (leaks["DL106", 70].count, leaks["DL106", 70].bytes, leaks["DL106", 70].device) == (2, 1536, "cuda:0")
    assert leaks["DL106", 70].filename == __file__ and "--thorough" in leaks["DL106", 70].suggestion
    assert allocator["calls"][-1][0] is None and not allocator["enabled"]  # switched off again


def test_a_program_that_records_history_itself_is_left_alone(driver, allocator):
    allocator["enabled"] = True
    with Tracer("cuda:1") as tracer:
        driver.add(0)
        torch.cuda.synchronize(1)
    assert allocator["calls"] == [] and allocator["enabled"]
    assert [leak.code for leak in tracer.leaks()] == ["DL101"]


def test_contexts_on_allowed_gpus_start_no_recording(driver, allocator):
    with Tracer(["cuda:0", "cuda:1"]):
        driver.add(0)
        torch.cuda.synchronize(1)
    assert allocator["calls"] == []


def test_recording_never_starts_before_cuda_is_initialised(allocator):
    history = AllocatorHistory()
    history.start()
    assert allocator["calls"] == [] and not history.recording and history.allocations(lambda index: True) == []
