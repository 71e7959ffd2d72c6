"""The probe benchmark's plumbing on the CPU: devlint's verdict and line for a probe
program, and how a verdict is judged against NVML (faked here; the GPU run is the real one)."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import cuda_probe  # noqa: E402


def test_each_probe_program_reports_the_call_at_its_own_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi: no truth on this machine
    pinned = cuda_probe.probe("Tensor.pin_memory()", "x = torch.ones(4)", "x.pin_memory()", "cpu", tmp_path)
    assert pinned["leaks"] == [{"code": "DL006", "line": cuda_probe.CALL_LINE, "device": "cuda:0", "file": "Tensor_pin_memory__.py"}]
    control = cuda_probe.probe("CPU-only control", "x = torch.ones(4)", "y = (x * 2).sum()", "cpu", tmp_path)
    assert control["leaks"] == [] and control["exit"] == 0


@pytest.mark.parametrize(
    "nvml, leaks, strict, verdict",
    [
        (518 << 20, [{"code": "DL006", "line": 8, "device": "cuda:0"}], True, "ok"),
        (0, [], True, "ok"),
        (518 << 20, [], True, "MISSED"),
        (0, [{"code": "DL006", "line": 8, "device": "cuda:0"}], True, "FALSE ALARM"),
        (518 << 20, [{"code": "DL101", "line": 0, "device": "cuda:0"}], False, "a leak without a line"),
        (518 << 20, [{"code": "DL101", "line": 1, "device": "cuda:0"}], True, "blamed at line 1"),
        (518 << 20, [{"code": "DL101", "line": 1, "device": "cuda:0"}], False, "ok"),
        (None, [], True, "no truth"),
    ],
)
def test_a_verdict_agrees_with_nvml_or_says_how_not(nvml, leaks, strict, verdict):
    result = {"gpu0_bytes": nvml, "leaks": leaks, "error": None}
    assert cuda_probe.judge(result, None, strict).startswith(verdict)


def test_the_sweep_takes_public_calls_without_required_arguments():
    names = [name for name, *_ in cuda_probe.sweep_calls()]
    assert "torch.cuda.synchronize()" in names and "torch.cuda.current_blas_handle()" in names
    assert "torch.cuda.set_device()" not in names and not any(name.startswith("torch.cuda._") for name in names)
    assert len(cuda_probe.ISSUE_CALLS) == 16 and sum(leaks for *_, leaks in cuda_probe.ISSUE_CALLS) == 6
