"""Pinned memory and CUDA graphs: calls that create a context on the current device without
asking for a device (issue 24's probe). On a CPU build each call is judged, then fails."""

import pytest
import torch
from rt_helpers import next_line, sites

from devlint.runtime import oracle
from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.usefixtures("tracing_mode")


def test_pinning_before_any_context_is_a_leak_on_the_current_device(attempt):
    x = torch.ones(4)
    with Tracer("cpu") as tracer:
        first = next_line()
        attempt(lambda: x.pin_memory())
        attempt(lambda: torch.empty(4, pin_memory=True))
        attempt(lambda: torch.zeros(2, 2, pin_memory=True))
        attempt(lambda: torch.empty_like(x, pin_memory=True))
        attempt(lambda: torch.empty(4, pin_memory=False))  # not pinned
        attempt(lambda: torch.empty(4, device="cpu"))
    assert sites(tracer.leaks()) == [("DL006", first + i) for i in range(4)]
    assert all(leak.device == "cuda:0" and leak.kind == "context" and leak.line > 0 for leak in tracer.leaks())
    assert "pins host memory while no CUDA context exists" in tracer.leaks()[0].message


def test_pinning_after_a_context_exists_is_not_a_leak(driver, attempt):
    driver.add(1)  # the program already works on cuda:1: pinning reuses that context
    with Tracer("cuda:1") as tracer:
        attempt(lambda: torch.ones(4).pin_memory())
    assert tracer.leaks() == []


def test_pinning_in_a_run_that_allows_the_current_gpu_is_not_a_leak(current_device, attempt):
    current_device(1)
    with Tracer("cuda:1") as tracer:
        attempt(lambda: torch.ones(4).pin_memory())
    assert tracer.leaks() == []


def test_graphs_pools_streams_and_raw_allocations_on_the_current_device(attempt):
    with Tracer("cuda:1") as tracer:
        first = next_line()
        attempt(lambda: torch.cuda.CUDAGraph())
        attempt(lambda: torch.cuda.current_stream())
        attempt(lambda: torch.cuda.default_stream())
        attempt(lambda: torch.cuda.caching_allocator_alloc(1024))
        attempt(lambda: torch.cuda.current_stream(1))  # allowed
        attempt(lambda: torch.cuda.caching_allocator_alloc(1024, 1))  # allowed
    assert sites(tracer.leaks()) == [("DL006", first + i) for i in range(4)]
    kinds = [leak.kind for leak in tracer.leaks()]
    assert kinds == ["context"] * 3 + ["allocation"]
    assert "`torch.cuda.current_stream()` uses the current device, cuda:0" in tracer.leaks()[1].message


def test_a_graph_pool_id_is_no_leak(attempt):
    # Measured by benchmarks/cuda_probe.py (one H100, torch 2.11): NVML shows no context and
    # 0 B on GPU0 after graph_pool_handle(), which only hands out a new pool id.
    with Tracer("cpu") as tracer:
        attempt(lambda: torch.cuda.graph_pool_handle())
    assert tracer.leaks() == []


def test_a_call_that_initialises_cuda_in_cpp_lets_the_oracle_ask_the_driver(monkeypatch):
    monkeypatch.setattr(oracle, "_driver", {"started": False})
    monkeypatch.setattr(torch.cuda, "CUDAGraph", type("CUDAGraph", (), {}))
    monkeypatch.setattr(torch._C, "_cuda_hasPrimaryContext", lambda index: index == 0, raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert not oracle.can_ask()
    with Tracer("cuda:1") as tracer:
        line = next_line()
        torch.cuda.CUDAGraph()
    assert oracle.can_ask()
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.created_context) == ("DL006", line, True)


def test_a_cpu_only_run_never_suggests_selecting_the_cpu_as_a_gpu(attempt):
    with Tracer("cpu") as tracer:
        attempt(lambda: torch.ones(2).pin_memory())
        attempt(lambda: torch.cuda.CUDAGraph())
    for leak in tracer.leaks():
        assert "set_device('cpu')" not in leak.suggestion and "this run allows no GPU" in leak.suggestion


def test_pin_memory_and_graphs_are_restored_after_tracing():
    pin, graph = torch.Tensor.pin_memory, torch.cuda.CUDAGraph.__new__
    with Tracer("cpu"):
        pass
    assert torch.Tensor.pin_memory is pin and torch.cuda.CUDAGraph.__new__ is graph


def test_a_dataloader_that_pins_is_blamed_on_the_loop_that_iterates_it(monkeypatch):
    """The loader pins each batch with `Tensor.pin_memory()` (torch/utils/data/_utils/pin_memory.py
    in torch 2.13), in the iterating thread or its pin thread; a CPU build has no accelerator,
    so one is faked for the loader to decide to pin."""
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *a, **k: torch.device("cuda"))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(4.0)), batch_size=2, pin_memory=True)
    with Tracer("cpu") as tracer:
        try:
            line = next_line()
            for batch in loader:
                pass
        except RuntimeError:  # a CPU build cannot pin, once devlint has judged the request
            pass
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.device) == ("DL006", line, "cuda:0")
