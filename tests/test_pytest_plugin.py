"""The pytest plugin, driven through pytester: options, precedence, markers, fixture,
report section, summary, warn mode, xdist, and staying out of the way when not asked."""

import importlib.metadata
import json
import textwrap

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
    code, out, err = run_devlint("check", suite.path / "test_suite.py", "--runtime-report", report, "--output-format", "json", "--no-cache")
    findings = json.loads(out)
    assert any(f["code"] == "DL002" and f["location"]["row"] == LEAK_LINE and f["runtime"]["count"] == 1 for f in findings)


def test_xdist_workers_check_their_tests_and_the_summary_combines(suite):
    pytest.importorskip("xdist")
    result = run(suite, "--devlint-device", "cuda:1", "-n", "2")
    result.assert_outcomes(passed=4, failed=1)
    assert "1 leak site" in result.stdout.str()


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
