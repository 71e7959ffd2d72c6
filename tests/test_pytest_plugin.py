"""The pytest plugin, driven through pytester: options, precedence, markers, fixture,
report section, summary, warn mode, xdist, and staying out of the way when not asked."""

import importlib.metadata
import json
import os
import signal
import socket
import textwrap
import time

import pytest

pytest.importorskip("torch")
pytest_plugins = ["pytester"]

_INSTALLED = any(ep.name == "devlint" for ep in importlib.metadata.entry_points(group="pytest11"))
PLUGIN = () if _INSTALLED else ("-p", "devlint.pytest_plugin")

LEAKY = textwrap.dedent(
    """
    import pytest
    import torch


    def attempt(make):
        # On a CPU build the request is judged, recorded, then fails: only the record matters here.
        try:
            make()
        except (RuntimeError, AssertionError):
            pass


    def test_clean():
        torch.zeros(2, device="cpu")


    def test_leaks():
        attempt(lambda: torch.zeros(2, device="cuda"))


    @pytest.mark.devlint(device="cuda:0")
    def test_allowed_by_marker():
        attempt(lambda: torch.zeros(2, device="cuda:0"))


    @pytest.mark.devlint_off
    def test_not_checked():
        attempt(lambda: torch.ones(2).cuda())


    @pytest.mark.devlint(allow=["DL001"])
    def test_allowed_code():
        attempt(lambda: torch.ones(2).cuda())
    """
).lstrip()


LEAK_LINE = LEAKY.splitlines().index('    attempt(lambda: torch.zeros(2, device="cuda"))') + 1


@pytest.fixture
def suite(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # never reach a real GPU from these tests
    monkeypatch.delenv("DEVLINT_DEVICE", raising=False)
    pytester.makepyfile(test_suite=LEAKY)
    return pytester


def run(pytester, *args):
    return pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", "-p", "no:asyncio", *args)  # the inner suites need no asyncio (pytest-lsp brings it)


def test_off_unless_asked(suite):
    result = run(suite)
    result.assert_outcomes(passed=5)
    out = result.stdout.str()
    assert "devlint: tests may use" not in out and "= devlint =" not in out


def test_leaking_test_fails_with_code_site_and_fix(suite):
    result = run(suite, "--devlint-device", "cuda:1")
    result.assert_outcomes(passed=4, failed=1)
    out = result.stdout.str()
    assert "test_suite.py::test_leaks FAILED" in out or "FAILED test_suite.py::test_leaks" in out
    assert "devlint: this test put work on a GPU it may not use" in out
    assert f"DL002 {suite.path / 'test_suite.py'}:{LEAK_LINE} (in test_leaks.<locals>.<lambda>) on cuda:0: 1 call" in out
    assert "fix: pass `device='cuda:1'`" in out and "- devlint -" in out  # the report section
    assert "devlint: tests may use cuda:1 (from command line)" in out  # the header
    assert "= devlint =" in out and "1 leak site" in out  # the summary


def test_precedence_marker_cli_env_ini(suite, monkeypatch):
    suite.makeini("[pytest]\ndevlint_device = cuda:0\n")
    run(suite).assert_outcomes(passed=5)  # ini allows GPU0: nothing leaks
    monkeypatch.setenv("DEVLINT_DEVICE", "cuda:1")
    run(suite).assert_outcomes(passed=4, failed=1)  # env beats ini
    run(suite, "--devlint-device", "cuda:0").assert_outcomes(passed=5)  # command line beats env


THROUGH_THE_CLASS = """
import torch


def test_moves_through_the_class():
    try:
        torch.Tensor.to(torch.ones(1), "cuda")  # only a thorough session sees a call made through the class
    except (RuntimeError, AssertionError):
        pass
"""


def test_thorough_precedence_cli_env_ini(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("DEVLINT_THOROUGH", raising=False)
    pytester.makepyfile(test_class_calls=THROUGH_THE_CLASS)
    run(pytester, "--devlint-device", "cuda:1").assert_outcomes(passed=1)  # the default mode does not see it
    result = run(pytester, "--devlint-device", "cuda:1", "--devlint-thorough")
    result.assert_outcomes(failed=1)
    assert "every torch call judged (thorough)" in result.stdout.str()
    pytester.makeini("[pytest]\ndevlint_thorough = true\n")
    run(pytester, "--devlint-device", "cuda:1").assert_outcomes(failed=1)  # ini
    monkeypatch.setenv("DEVLINT_THOROUGH", "0")
    run(pytester, "--devlint-device", "cuda:1").assert_outcomes(passed=1)  # env beats ini
    run(pytester, "--devlint-device", "cuda:1", "--devlint-thorough").assert_outcomes(failed=1)  # command line beats env
    monkeypatch.setenv("DEVLINT_THOROUGH", "maybe")
    result = run(pytester, "--devlint-device", "cuda:1")
    assert result.ret != 0 and "DEVLINT_THOROUGH='maybe': use 1 or 0" in result.stdout.str() + result.stderr.str()


def test_thorough_reaches_the_processes_tests_start(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("DEVLINT_THOROUGH", raising=False)
    code = "import torch\\ntry:\\n    torch.Tensor.to(torch.ones(1), 'cuda')\\nexcept Exception:\\n    pass"
    pytester.makepyfile(
        f"""
        import subprocess, sys

        def test_subprocess_child():
            subprocess.run([sys.executable, "-c", "{code}"], check=True)
        """
    )
    run(pytester, "--devlint-device", "cuda:1").assert_outcomes(passed=1)  # through the class: unseen by default
    run(pytester, "--devlint-device", "cuda:1", "--devlint-thorough").assert_outcomes(failed=1)


def test_warn_mode_passes_and_warns(suite):
    result = run(suite, "--devlint-device", "cuda:1", "--devlint-mode", "warn")
    result.assert_outcomes(passed=5, warnings=1)
    assert "DevlintLeakWarning" in result.stdout.str()


def test_fixture_gives_the_leaks_so_far(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pytester.makepyfile(
        """
        import torch

        def test_sees_its_leak(devlint_leaks):
            assert devlint_leaks() == []
            try:
                torch.zeros(1, device="cuda:0")
            except (RuntimeError, AssertionError):
                pass
            (leak,) = devlint_leaks()
            assert (leak.code, leak.device, leak.line) == ("DL008", "cuda:0", 6)
        """
    )
    result = run(pytester, "--devlint-device", "cuda:1", "--devlint-mode", "warn")
    result.assert_outcomes(passed=1, warnings=1)


def test_module_fixture_leak_is_charged_to_the_first_test(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pytester.makepyfile(
        """
        import pytest, torch

        @pytest.fixture(scope="module")
        def weights():
            try:
                return torch.load("weights.pt")
            except Exception:
                return torch.randn(2).cuda() if False else None

        @pytest.fixture(scope="module")
        def grid():
            try:
                torch.arange(4).cuda()
            except (RuntimeError, AssertionError):
                pass

        def test_first(grid):
            pass

        def test_second(grid):
            pass
        """
    )
    result = run(pytester, "--devlint-device", "cuda:1")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "test_first" in out.split("short test summary")[1]
    assert "DL011" in out or "DL001" in out


def test_leak_at_collection_is_in_the_summary(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pytester.makepyfile(
        """
        import torch
        try:
            torch.empty(3, device="cuda")
        except (RuntimeError, AssertionError):
            pass

        def test_nothing():
            pass
        """
    )
    result = run(pytester, "--devlint-device", "cuda:1")
    result.assert_outcomes(passed=1)
    assert "(at collection)" in result.stdout.str()


def test_report_file_feeds_devlint_check(suite, run_devlint):
    report = suite.path / "leaks.json"
    run(suite, "--devlint-device", "cuda:1", "--devlint-report", str(report))
    data = json.loads(report.read_text())
    assert data["version"] == 1 and data["allowed"] == ["cuda:1"]
    assert [(l["code"], l["line"]) for l in data["leaks"]] == [("DL002", LEAK_LINE)]
    assert data["leaks"][0]["processes"] == [{"pid": os.getpid(), "rank": None, "local_rank": None, "host": socket.gethostname(), "count": 1, "bytes": 0}]
    code, out, err = run_devlint("check", suite.path / "test_suite.py", "--runtime-report", report, "--output-format", "json", "--no-cache")
    findings = json.loads(out)
    assert any(f["code"] == "DL002" and f["location"]["row"] == LEAK_LINE and f["runtime"]["count"] == 1 for f in findings)


def test_xdist_workers_check_their_tests_and_their_children_and_the_summary_combines(suite):
    """Each worker is a process with its own tests, and follows their children itself."""
    pytest.importorskip("xdist")
    suite.makepyfile(test_kids=KIDS)
    report = suite.path / "leaks.json"
    result = run(suite, "--devlint-device", "cuda:1", "-n", "2", "-k", "test_suite or fork_child or clean_child", "--devlint-report", str(report))
    result.assert_outcomes(passed=5, failed=2)
    assert "2 leak sites" in result.stdout.str()
    data = json.loads(report.read_text())
    [child] = next(leak for leak in data["leaks"] if leak["line"] == CHILD_LEAK)["processes"]
    traced = {p["pid"]: p for p in data["processes"]}
    workers = {pid for pid, p in traced.items() if p["parent"] is None}
    assert len(workers) == 2 and os.getpid() not in workers
    assert traced[child["pid"]]["parent"] in workers
    assert f"(1 test: test_kids.py::test_fork_child; child process {child['pid']})" in result.stdout.str()


def test_bad_marker_is_a_usage_error(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.devlint(devices="cuda:1")
        def test_x():
            pass
        """
    )
    result = run(pytester, "--devlint-device", "cuda:1")
    assert result.ret != 0 and "takes device= and allow=" in result.stdout.str() + result.stderr.str()


# --- the processes tests start ------------------------------------------------------------

KIDS = textwrap.dedent(
    """
    import multiprocessing as mp
    import subprocess
    import sys

    import pytest
    import torch
    from torch.utils.data import DataLoader, Dataset


    def attempt(make):
        try:
            make()
        except (RuntimeError, AssertionError):
            pass


    def leak():
        attempt(lambda: torch.ones(1).cuda())


    def start(method, target=leak):
        child = mp.get_context(method).Process(target=target)
        child.start()
        child.join()


    class Touching(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            attempt(lambda: torch.zeros(1, device="cuda"))
            return index


    def test_spawn_child():
        start("spawn")


    def test_fork_child():
        start("fork")


    def test_subprocess_child():
        subprocess.run([sys.executable, "-c", "import torch\\ntry:\\n    torch.empty(1, device='cuda:0')\\nexcept Exception:\\n    pass"], check=True)


    def test_dataloader_workers():
        assert sorted(int(x) for x in DataLoader(Touching(), num_workers=2, multiprocessing_context="fork")) == [0, 1, 2, 3]


    def test_clean_child():
        start("fork", target=lambda: torch.zeros(1))


    @pytest.mark.devlint(device="cuda:0")
    def test_marker_devices_reach_the_child():
        start("fork")


    @pytest.mark.devlint(allow=["DL001"])
    def test_marker_allow_reaches_the_child():
        start("fork")


    @pytest.mark.devlint_off
    def test_off_child():
        start("fork")
    """
).lstrip()
CHILD_LEAK = KIDS.splitlines().index("    attempt(lambda: torch.ones(1).cuda())") + 1
WORKER_LEAK = KIDS.splitlines().index('        attempt(lambda: torch.zeros(1, device="cuda"))') + 1


@pytest.fixture
def kids(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("DEVLINT_DEVICE", raising=False)
    monkeypatch.delenv("DEVLINT_JOB", raising=False)
    pytester.makepyfile(test_kids=KIDS)
    return pytester


def test_a_leak_in_a_child_process_fails_the_test_that_started_it(kids):
    report = kids.path / "leaks.json"
    result = run(kids, "--devlint-device", "cuda:1", "--devlint-report", str(report))
    result.assert_outcomes(failed=4, passed=4)
    out = result.stdout.str()
    failed = sorted(line.split("::")[1].split(" ")[0] for line in out.splitlines() if line.startswith("FAILED"))
    assert failed == ["test_dataloader_workers", "test_fork_child", "test_spawn_child", "test_subprocess_child"]
    data = json.loads(report.read_text())
    leaks = {(leak["code"], leak["line"]): leak for leak in data["leaks"]}
    assert sorted(leaks) == [("DL001", CHILD_LEAK), ("DL002", WORKER_LEAK), ("DL008", 3)]
    path = kids.path / "test_kids.py"
    spawned, forked = (p["pid"] for p in leaks["DL001", CHILD_LEAK]["processes"])
    for pid in (spawned, forked):  # the failure names the site and the child
        assert f"DL001 {path}:{CHILD_LEAK} (in leak.<locals>.<lambda>) on cuda:0: 1 call, 0 B, in child process {pid}" in out
    workers = leaks["DL002", WORKER_LEAK]["processes"]
    assert [p["count"] for p in workers] == [2, 2] and leaks["DL002", WORKER_LEAK]["count"] == 4  # two workers, two items each
    pids = ", ".join(str(p["pid"]) for p in workers)
    assert f"DL002 {path}:{WORKER_LEAK} (in Touching.__getitem__.<locals>.<lambda>) on cuda:0: 4 calls, 0 B, in child processes {pids}" in out
    [subprocess_child] = leaks["DL008", 3]["processes"]
    assert leaks["DL008", 3]["filename"] == "<string>"
    assert f"DL008 <string>:3 (in <module>) on cuda:0: 1 call, 0 B, in child process {subprocess_child['pid']}" in out
    # the summary: each site once, with its tests and the children that leaked there
    assert f"DL001 {path}:{CHILD_LEAK} on cuda:0: 2 calls, 0 B (2 tests: test_kids.py::test_spawn_child ...; child processes {spawned}, {forked})" in out
    # the report: each leak's processes are children of this pytest process, with no rank
    traced = {p["pid"]: p for p in data["processes"]}
    for leak in data["leaks"]:
        for process in leak["processes"]:
            assert traced[process["pid"]]["parent"] == os.getpid() and process["rank"] is None and traced[process["pid"]]["finished"]
    assert traced[os.getpid()]["parent"] is None
    assert "DEVLINT_JOB" not in os.environ  # the environment is the test's own again


LINGERING = textwrap.dedent(
    """
    import multiprocessing as mp
    import os
    import signal
    import time

    import pytest
    import torch

    fork = mp.get_context("fork")


    def attempt(make):
        try:
            make()
        except (RuntimeError, AssertionError):
            pass


    def leak_then_die():
        attempt(lambda: torch.zeros(1, device="cuda"))
        os.kill(os.getpid(), signal.SIGKILL)


    def leak_then_hang(ready):
        attempt(lambda: torch.ones(1).cuda())
        ready.set()
        time.sleep(120)


    def test_killed_child():
        child = fork.Process(target=leak_then_die)
        child.start()
        child.join()


    def test_hanging_child():
        ready = fork.Event()
        child = fork.Process(target=leak_then_hang, args=(ready,), daemon=True)
        child.start()
        assert ready.wait(60)
        print("HANGING-PID", child.pid)


    def wait_then_leak(go):
        go.wait(60)
        attempt(lambda: torch.empty(1, device="cuda:0"))


    @pytest.fixture(scope="module")
    def server():
        go = fork.Event()
        child = fork.Process(target=wait_then_leak, args=(go,))
        child.start()
        yield go
        child.join(60)


    def test_starts_the_server(server):
        pass


    def test_uses_the_server(server):
        server.set()
    """
).lstrip()


@pytest.fixture
def lingering(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("DEVLINT_DEVICE", raising=False)
    monkeypatch.setenv("DEVLINT_JOB_WAIT", "1")
    pytester.makepyfile(test_lingering=LINGERING)
    return pytester


def test_a_killed_or_hanging_child_never_hangs_the_session(lingering):
    report = lingering.path / "leaks.json"
    started = time.monotonic()
    result = run(lingering, "--devlint-device", "cuda:1", "--devlint-report", str(report), "-k", "child")
    hanging = int(next(line for line in result.stdout.lines if line.startswith("HANGING-PID")).split()[-1])
    try:
        assert time.monotonic() - started < 60
        result.assert_outcomes(failed=2)
        data = json.loads(report.read_text())
        killed = next(p for p in data["processes"] if not p["finished"] and p["pid"] != hanging)
        assert {leak["processes"][0]["pid"] for leak in data["leaks"]} == {killed["pid"], hanging}
        out = result.stdout.str()
        assert f"test_lingering.py::test_killed_child: process {killed['pid']} ended without finishing (killed or crashed)" in out
        assert f"test_lingering.py::test_hanging_child: process {hanging} was still running after 1 s" in out
    finally:
        os.kill(hanging, signal.SIGKILL)


def test_a_leak_after_its_test_ended_fails_the_session(lingering):
    result = run(lingering, "--devlint-device", "cuda:1", "-k", "server")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "(1 test: test_lingering.py::test_starts_the_server, after it ended; child process " in out
    assert "no test is left to fail, so the session fails" in out
    result = run(lingering, "--devlint-device", "cuda:1", "-k", "server", "--devlint-mode", "warn")
    assert result.ret == pytest.ExitCode.OK and "after it ended" in result.stdout.str()


def test_children_can_be_left_unchecked(kids):
    for options, ini in (((), ""), (("--devlint-no-children",), ""), ((), "[pytest]\ndevlint_children = false\n")):
        if ini:
            kids.makeini(ini)
        result = run(kids, "--devlint-device", "cuda:1", "-k", "fork_child", *options)
        if not options and not ini:
            result.assert_outcomes(failed=1)
        else:
            result.assert_outcomes(passed=1)
            assert "the processes tests start are not checked" in result.stdout.str()
