"""Sessions: nesting, strict mode, snapshots, threads, and a tracer that never touches a GPU."""

import subprocess
import sys
import threading

import pytest
import torch
from rt_helpers import next_line, repo_environment, sites

import devlint
from devlint.runtime.devices import DeviceError
from devlint.runtime.hub import HUB
from devlint.runtime.report import DeviceLeakError
from devlint.runtime.tracer import Tracer, trace

pytestmark = pytest.mark.usefixtures("tracing_mode")  # every test, in both tracing modes


def test_trace_is_the_context_manager_behind_devlint_trace(attempt):
    assert devlint.trace is trace and devlint.DeviceLeakError is DeviceLeakError
    with devlint.trace(device="cuda:1") as tracer:
        line = next_line()
        attempt(lambda: torch.ones(2).cuda())
    assert sites(tracer.leaks()) == [("DL001", line)]
    assert not tracer.running


def test_nested_sessions_judge_against_their_own_devices(attempt):
    with Tracer("cuda:1") as outer:
        with Tracer(["cuda:0", "cuda:1"]) as inner:
            attempt(lambda: torch.zeros(1, device="cuda:0"))
        assert HUB.sessions == (outer,)
        attempt(lambda: torch.zeros(1, device="cuda:2"))
    assert [leak.code for leak in outer.leaks()] == ["DL008", "DL103"]
    assert inner.leaks() == []


def test_strict_mode_raises_before_the_call_runs(monkeypatch):
    ran = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: ran.append(device))
    with Tracer("cuda:1", strict=True) as tracer:
        torch.cuda.synchronize(1)
        line = next_line()
        with pytest.raises(DeviceLeakError, match=r"DL006 at .*test_tracer.py:\d+: `torch.cuda.synchronize\(\)` uses the current device, cuda:0 \(this run allows cuda:1\)"):
            torch.cuda.synchronize()
    assert ran == [1]
    assert sites(tracer.leaks()) == [("DL006", line + 1)]


def test_a_snapshot_gives_the_leaks_of_one_stretch(attempt):
    with Tracer("cuda:1") as tracer:
        attempt(lambda: torch.zeros(1, device="cuda"))
        mark = tracer.snapshot()
        line = next_line()
        attempt(lambda: torch.ones(1).cuda())
        assert sites(tracer.leaks(since=mark)) == [("DL001", line)]
        tracer.reset()
        assert tracer.leaks() == []


def test_devices_come_from_devlint_device_when_not_given(monkeypatch):
    monkeypatch.setenv("DEVLINT_DEVICE", "cuda:3")
    assert Tracer().allowed.labels == ["cuda:3"]
    monkeypatch.delenv("DEVLINT_DEVICE")
    with pytest.raises(DeviceError, match="no GPU is visible"):
        Tracer()  # auto, with CUDA_VISIBLE_DEVICES="" in these tests


def test_start_and_stop_are_explicit_and_stop_is_idempotent():
    tracer = Tracer("cuda:1").start()
    with pytest.raises(RuntimeError, match="already running"):
        tracer.start()
    tracer.stop()
    tracer.stop()
    assert HUB.sessions == ()


def test_a_tracer_can_run_in_a_worker_thread_and_restores_everything_there(attempt):
    results = {}
    zeros, to = torch.zeros, vars(torch._C.TensorBase)["to"]

    def work():
        with Tracer("cuda:1") as tracer:
            attempt(lambda: torch.zeros(1, device="cuda"))
            results["patched"] = torch.zeros is not zeros and "to" in vars(torch.Tensor)
            inner = threading.Thread(target=lambda: None)  # a thread started while tracing
            inner.start()
            inner.join()
        results["leaks"] = tracer.leaks()
        results["stack"] = torch._C._len_torch_function_stack()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert [leak.code for leak in results["leaks"]] == ["DL002"]
    assert results["patched"] and results["stack"] == 0
    assert torch.zeros is zeros and "to" not in vars(torch.Tensor) and torch.Tensor.to is to


def test_the_tracer_never_initialises_cuda_itself(monkeypatch):
    """A CPU-only program under the tracer: devlint must not call anything that initialises CUDA."""

    def forbidden(*args, **kwargs):
        raise AssertionError("devlint initialised CUDA")

    for name in ("init", "_lazy_init", "is_available", "device_count", "current_device", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, forbidden)
    with Tracer("cuda:1") as tracer:
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
        model(torch.ones(2, 4)).sum().backward()
        torch.zeros(3).to("cpu")
        report = tracer.report("python cpu_only.py")
    assert report["leaks"] == [] and report["gpus"] == []
    assert not torch.cuda.is_initialized()


def test_importing_devlint_does_not_import_torch():
    code = "import sys, devlint, devlint.cli, devlint.catalog; assert 'torch' not in sys.modules; devlint.trace; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env=repo_environment())
