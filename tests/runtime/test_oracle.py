"""The context oracle and NVML, with the driver faked: which call created a context, and
contexts nobody asked for (DL101)."""

import os
import sys
from types import SimpleNamespace

import pytest
import torch
from rt_helpers import next_line

from devlint.runtime import oracle
from devlint.runtime.devices import Allowed
from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.usefixtures("tracing_mode")  # every test, in both tracing modes


def test_polling_reports_each_new_context_once(driver):
    watcher = oracle.ContextOracle()
    assert watcher.poll() == set()
    driver.add(1)
    assert watcher.poll() == {1}
    assert watcher.poll() == set()


def test_nothing_is_asked_before_cuda_is_initialised():
    assert not oracle.can_ask()
    assert oracle.ContextOracle().poll() == set()


def test_the_leaking_call_that_created_the_context_is_named(driver):
    with Tracer("cuda:1") as tracer:
        for _ in range(2):
            torch.cuda.synchronize()
    [leak] = tracer.leaks()
    assert (leak.code, leak.count, leak.created_context) == ("DL006", 2, True)
    assert leak.full_message.endswith("this created the CUDA context on cuda:0 (~0.5 GiB)")


def test_a_context_appearing_during_an_allowed_call_is_dl101_at_that_call(driver, monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: driver.update({0, 1}))
    with Tracer("cuda:1") as tracer:
        line = next_line()
        torch.cuda.synchronize(1)
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.device, leak.kind) == ("DL101", line, "cuda:0", "context")
    assert "during this call, which asked for cuda:1" in leak.message


def test_a_context_appearing_between_calls_is_dl101_at_the_next_call(driver):
    with Tracer("cuda:1") as tracer:
        driver.add(0)  # e.g. an extension that used the current device
        line = next_line()
        torch.cuda.synchronize(1)
    [leak] = tracer.leaks()
    assert (leak.code, leak.line) == ("DL101", line)
    assert "before this call" in leak.message


def test_a_context_appearing_after_the_last_call_is_dl101_at_no_site(driver):
    with Tracer("cuda:1") as tracer:
        driver.add(0)
    [leak] = tracer.leaks()
    assert (leak.code, leak.filename, leak.line) == ("DL101", "<unknown>", 0)


def test_contexts_from_before_tracing_and_on_allowed_gpus_are_not_leaks(driver):
    driver.add(0)
    with Tracer("cuda:1") as tracer:
        torch.cuda.synchronize(1)
    assert tracer.leaks() == []


class FakeNvml:
    """pynvml's calls, for GPUs whose processes are given as {physical index: [(pid, bytes)]}."""

    def __init__(self, processes):
        self.processes = processes

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.processes)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetUUID(self, handle):
        return f"GPU-000{handle}-aaaa"

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self.processes[handle]]


def test_gpu_usage_maps_visible_devices_to_physical_gpus(driver, monkeypatch):
    driver.update({0, 1})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-0000")
    nvml = FakeNvml({0: [(os.getpid(), 600 << 20)], 1: [], 2: [(os.getpid(), 518 << 20), (1, 5)]})
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    usages, notes = oracle.gpu_usage(Allowed(frozenset({1})))
    assert [(u.device, u.physical, u.allowed, u.context, u.memory, u.reserved) for u in usages] == [
        ("cuda:0", 2, False, True, 518 << 20, 2048),
        ("cuda:1", 0, True, True, 600 << 20, 2048),
    ]
    assert notes == []


def test_unmatched_pids_are_reported_not_guessed(driver, monkeypatch):
    driver.add(0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml({0: [(1, 518 << 20)], 1: []}))
    usages, notes = oracle.gpu_usage(Allowed(frozenset({1})))
    assert [u.memory for u in usages] == [None, None]
    assert "PIDs are probably namespaced" in notes[0]


def test_without_nvml_the_report_says_memory_was_not_measured(driver, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    usages, notes = oracle.gpu_usage(Allowed(frozenset({1})))
    assert [u.memory for u in usages] == [None, None]
    assert "NVML is not available" in notes[0]
