"""`devlint run` end to end, in a child process: argv, exit codes, the report on crash, -m."""

import json
import subprocess
import sys
import textwrap

import pytest
from rt_helpers import repo_environment

LEAKY = """
import sys
import torch

print("program output", sys.argv[1:])
x = torch.ones(4)
try:
    x.cuda()  # line 8
except (AssertionError, RuntimeError):
    pass
"""


def devlint_run(tmp_path, *args, env=None, source=LEAKY, report=None):
    """`devlint run --report REPORT ARGS` in tmp_path, where program.py holds `source`."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    report = report or tmp_path / "report.json"
    command = [sys.executable, "-m", "devlint", "run", "--report", str(report), *args]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=repo_environment(**(env or {})))
    loaded = json.loads(report.read_text()) if report.is_file() else None
    return result, loaded


MODES = pytest.mark.parametrize("mode", [[], ["--thorough"]], ids=["default", "thorough"])


@MODES
def test_a_leak_exits_1_with_the_report_and_summary_on_stderr(tmp_path, mode):
    result, report = devlint_run(tmp_path, *mode, "--device", "cuda:1", "program.py", "--flag", "-m", "x")
    assert result.returncode == 1, result.stderr
    assert result.stdout == "program output ['--flag', '-m', 'x']\n"  # untouched, arguments passed through
    assert "devlint: 1 leak site on GPUs this run may not use (allowed: cuda:1)" in result.stderr
    assert "program.py:8  DL001  1 call" in result.stderr
    [leak] = report["leaks"]
    assert (leak["code"], leak["line"], leak["filename"]) == ("DL001", 8, str(tmp_path / "program.py"))
    assert report["allowed"] == ["cuda:1"] and report["command"].endswith("program.py --flag -m x")


def test_a_clean_program_exits_0(tmp_path):
    result, report = devlint_run(tmp_path, "--device", "cuda:1", "program.py", source="import torch\nprint(torch.ones(2).sum().item())\n")
    assert (result.returncode, result.stdout, report["leaks"]) == (0, "2.0\n", [])
    assert "devlint: no leaks (allowed: cuda:1)" in result.stderr


CRASHING = LEAKY + """
raise ValueError("the program failed")
"""


def test_a_crash_keeps_the_program_exit_code_and_still_writes_the_report(tmp_path):
    result, report = devlint_run(tmp_path, "--device", "cuda:1", "program.py", source=CRASHING)
    assert result.returncode == 1
    assert [leak["code"] for leak in report["leaks"]] == ["DL001"]
    traceback = result.stderr[result.stderr.index("Traceback"):]
    assert 'File "' + str(tmp_path / "program.py") + '", line 12' in traceback
    assert "runpy" not in traceback and "devlint/runtime" not in traceback
    assert "ValueError: the program failed" in traceback


@pytest.mark.parametrize("ending, code", [("sys.exit(3)", 3), ("sys.exit('bad input')", 1), ("sys.exit(0)", 1), ("raise KeyboardInterrupt", 130)])
def test_the_program_exit_status_wins_when_it_failed(tmp_path, ending, code):
    result, report = devlint_run(tmp_path, "--device", "cuda:1", "program.py", source=LEAKY + ending + "\n")
    assert result.returncode == code  # sys.exit(0) succeeded: then the leak decides
    assert [leak["code"] for leak in report["leaks"]] == ["DL001"]


def test_strict_raises_at_the_leaking_line(tmp_path):
    result, report = devlint_run(tmp_path, "--strict", "--device", "cuda:1", "program.py")
    assert result.returncode == 1
    assert "DeviceLeakError: DL001 at " in result.stderr and "program.py:8" in result.stderr
    assert report["leaks"][0]["count"] == 1


def test_the_environment_configures_device_and_strict(tmp_path):
    result, report = devlint_run(tmp_path, "program.py", env={"DEVLINT_DEVICE": "cuda:2", "DEVLINT_STRICT": "1"})
    assert result.returncode == 1 and "DeviceLeakError" in result.stderr
    assert report["allowed"] == ["cuda:2"]


def test_a_module_runs_with_dash_m(tmp_path):
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(textwrap.dedent(LEAKY))
    result, report = devlint_run(tmp_path, "--device", "cuda:1", "-m", "app.main", "--device", "cuda:0")
    assert result.returncode == 1, result.stderr
    assert result.stdout == "program output ['--device', 'cuda:0']\n"  # after MODULE, options are the program's
    assert report["leaks"][0]["filename"] == str(package / "main.py")
    assert " -m app.main --device cuda:0" in report["command"]


@MODES
def test_work_in_threads_the_program_left_running_is_traced(tmp_path, mode):
    source = """
    import threading, time, torch

    def late():
        time.sleep(0.2)
        try:
            torch.zeros(1, device="cuda")
        except (AssertionError, RuntimeError):
            pass

    threading.Thread(target=late).start()
    """
    result, report = devlint_run(tmp_path, *mode, "--device", "cuda:1", "program.py", source=source)
    assert [(leak["code"], leak["line"]) for leak in report["leaks"]] == [("DL002", 7)]


THROUGH_THE_CLASS = """
import torch

try:
    torch.Tensor.to(torch.ones(1), "cuda")  # line 5: only the thorough mode sees calls made through the class
except (AssertionError, RuntimeError):
    pass
"""


@pytest.mark.parametrize("args, env, leaks", [([], {}, []), (["--thorough"], {}, [("DL002", 5)]), ([], {"DEVLINT_THOROUGH": "1"}, [("DL002", 5)])])
def test_thorough_is_an_option_or_the_environment(tmp_path, args, env, leaks):
    result, report = devlint_run(tmp_path, *args, "--device", "cuda:1", "program.py", source=THROUGH_THE_CLASS, env=env)
    assert result.returncode == (1 if leaks else 0), result.stderr
    assert [(leak["code"], leak["line"]) for leak in report["leaks"]] == leaks


@pytest.mark.parametrize("device, message", [("cuda", "names no GPU"), ("auto", "exactly one visible GPU")])
def test_unusable_devices_are_usage_errors(tmp_path, device, message):
    result, report = devlint_run(tmp_path, "--device", device, "program.py")
    assert result.returncode == 2 and message in result.stderr and report is None
    assert result.stdout == ""


def test_a_report_that_cannot_be_written_is_an_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    result, _ = devlint_run(tmp_path, "--device", "cuda:1", "program.py", source="pass\n", report=tmp_path / "a-file" / "report.json")
    assert result.returncode == 2 and "cannot write the report" in result.stderr


@pytest.mark.parametrize("code", ["DL001", "DL002", "DL003", "DL004", "DL005", "DL006", "DL007", "DL008", "DL009", "DL010", "DL012", "DL013", "DL101", "DL102", "DL103", "DL104", "DL105", "DL106"])
def test_every_code_the_runtime_emits_has_a_rule_page(code):
    result = subprocess.run([sys.executable, "-m", "devlint", "rule", code], capture_output=True, text=True, env=repo_environment())
    assert result.returncode == 0 and result.stdout.startswith(f"# {code} ")


@pytest.mark.parametrize(
    "args, named",
    [
        (["missing.py"], "missing.py: no such file"),
        (["."], ".: it is a directory without a __main__.py"),
        (["notes.txt"], "notes.txt: it is not a Python program"),
        (["blob.bin"], "blob.bin: it is not a Python program"),
        (["-m", "missing.module"], "-m missing.module: no module named missing"),
        (["-m", "json.missing"], "-m json.missing: no module named json.missing"),
        (["-m", "json"], "-m json: it is a package without a __main__ module"),
    ],
)
def test_a_program_that_cannot_start_is_one_line_and_exit_2(tmp_path, args, named):
    (tmp_path / "notes.txt").write_text("buy milk, then train the model\n")
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02")
    result, report = devlint_run(tmp_path, "--device", "cpu", *args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "Warning" not in line and "_conversion_method" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"devlint: error: cannot run {named}")
    assert "Traceback" not in result.stderr and "no leaks" not in result.stderr
    assert report is None and result.stdout == ""


def test_a_directory_or_zip_with_a_main_still_runs(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text("print('ran app')\n")
    result, _ = devlint_run(tmp_path, "--device", "cpu", "app")
    assert result.returncode == 0 and "ran app" in result.stdout


NVML_SHOWS_GPU0 = """
import os
import sys
from types import SimpleNamespace

import torch


class Nvml:  # what NVML said in issue 24 after `x.pin_memory()`: 518 MiB of this process on GPU0
    nvmlInit = nvmlShutdown = staticmethod(lambda: None)
    nvmlDeviceGetCount = staticmethod(lambda: 1)
    nvmlDeviceGetHandleByIndex = staticmethod(lambda index: index)
    nvmlDeviceGetUUID = staticmethod(lambda handle: "GPU-0000")
    nvmlDeviceGetComputeRunningProcesses = staticmethod(lambda handle: [SimpleNamespace(pid=os.getpid(), usedGpuMemory=518 << 20)])


x = torch.ones(4)
y = x + 1  # line 18: no hook sees anything
sys.modules["pynvml"] = Nvml
"""


def test_a_run_whose_oracle_shows_memory_on_a_disallowed_gpu_is_never_clean(tmp_path):
    result, report = devlint_run(tmp_path, "--device", "cpu", "program.py", source=NVML_SHOWS_GPU0, env={"CUDA_VISIBLE_DEVICES": "0"})
    assert result.returncode == 1, result.stderr
    assert "no leaks" not in result.stderr
    assert report["leaks"] != [] and report["gpus"][0]["memory"] == 518 << 20
    [leak] = report["leaks"]
    assert (leak["code"], leak["device"], leak["filename"]) == ("DL101", "cuda:0", str(tmp_path / "program.py"))
    assert leak["line"] >= 1
    assert f"program.py:{leak['line']}  DL101" in result.stderr
    assert ".py:0 " not in result.stderr and "<unknown>" not in result.stderr
