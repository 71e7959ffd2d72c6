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


def test_a_context_appearing_with_no_call_checked_is_dl101_where_tracing_began(driver):
    line = next_line()
    with Tracer("cuda:1") as tracer:
        driver.add(0)
    [leak] = tracer.leaks()
    assert (leak.code, leak.filename, leak.line) == ("DL101", __file__, line)
    assert "no call devlint checks ran before it" in leak.message


def test_a_context_appearing_after_the_last_call_is_dl101_after_the_last_clean_check(driver):
    with Tracer("cuda:1") as tracer:
        line = next_line()
        torch.cuda.synchronize(1)  # checked: no context on cuda:0 yet
        driver.add(0)
    [leak] = tracer.leaks()
    assert (leak.code, leak.filename, leak.line) == ("DL101", __file__, line)
    assert "after this line" in leak.message


@pytest.fixture
def nvml_shows(monkeypatch):
    """This process holds memory on the given physical GPUs by NVML."""

    def shows(memory: dict):
        processes = {index: [(os.getpid(), memory[index])] if index in memory else [] for index in range(2)}
        monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(processes))
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")

    return shows


def test_memory_nvml_sees_on_a_disallowed_gpu_is_never_clean(nvml_shows, monkeypatch):
    """The driver's flag was never readable (CUDA initialised in C++, as pinned memory
    does), but NVML shows 518 MiB on GPU0: the report has a DL101 there, with a line."""
    monkeypatch.setattr(oracle, "_driver", {"started": False})
    nvml_shows({0: 518 << 20})
    line = next_line()
    with Tracer("cuda:1") as tracer:
        pass
    report = tracer.report()
    [leak] = report["leaks"]
    assert (leak["code"], leak["device"], leak["line"], leak["filename"]) == ("DL101", "cuda:0", line, __file__)
    assert [(g["device"], g["context"], g["memory"]) for g in report["gpus"]][0] == ("cuda:0", True, 518 << 20)
    assert tracer.report()["leaks"][0]["count"] == 1  # reporting again adds nothing


def test_memory_only_on_allowed_gpus_or_already_explained_adds_nothing(nvml_shows, driver):
    nvml_shows({1: 600 << 20})
    with Tracer("cuda:1") as tracer:
        torch.cuda.synchronize(1)
    assert tracer.report()["leaks"] == []
    nvml_shows({0: 518 << 20, 1: 600 << 20})
    with Tracer("cuda:1") as tracer:
        torch.cuda.synchronize()  # DL006, which created the context on cuda:0
    assert [leak["code"] for leak in tracer.report()["leaks"]] == ["DL006"]


def test_the_primary_context_query_of_newer_torch_is_used_where_present(driver, monkeypatch):
    """torch 2.15's `torch.cuda._primary_context_devices()` answers for every device at once."""
    asked = []
    monkeypatch.setattr(torch._C, "_cuda_hasPrimaryContext", lambda index: asked.append(index) or False, raising=False)
    monkeypatch.setattr(torch.cuda, "_primary_context_devices", lambda: [0], raising=False)
    watcher = oracle.ContextOracle()
    assert watcher.poll() == {0}
    assert asked == []
    monkeypatch.setattr(torch.cuda, "_primary_context_devices", lambda: [False, True], raising=False)
    assert oracle.context_devices([0, 1]) == {1}
    monkeypatch.setattr(torch.cuda, "_primary_context_devices", lambda: ["unexpected"], raising=False)
    assert oracle.context_devices([0, 1]) == set() and asked == [0, 1]  # an answer it cannot read: asked per device


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


def test_without_pynvml_nvidia_smi_answers(driver, monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        'case "$1" in --query-gpu*) printf "0, GPU-aaaa\\n1, GPU-bbbb\\n";; '
        f'*) printf "{os.getpid()}, GPU-bbbb, 518\\n1, GPU-aaaa, 9\\n";; esac\n'
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    usages, notes = oracle.gpu_usage(Allowed(frozenset({0})))
    assert [(u.device, u.memory, u.context) for u in usages] == [("cuda:0", 0, False), ("cuda:1", 518 << 20, True)]
    assert notes == []


def test_without_nvml_the_report_says_memory_was_not_measured(driver, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    usages, notes = oracle.gpu_usage(Allowed(frozenset({1})))
    assert [u.memory for u in usages] == [None, None]
    assert "NVML is not available" in notes[0]
