"""`devlint check --runtime-report`: confirmed, runtime-only and exercised findings; bad reports."""

import json

import pytest

USER = (
    "import torch\n"
    "from facelibx import Helper\n"
    "\n"
    "\n"
    "def prepare(frames, device):\n"
    "    helper = Helper(size=64)\n"
    "    weights = torch.load('w.pth')\n"
    "    return helper, weights, frames.to(device)\n"
)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "app.py").write_text(USER)
    lib = tmp_path / "venv" / "lib" / "site-packages" / "facelibx"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("class Helper:\n    def __init__(self, size=64, device=None):\n        pass\n")
    return tmp_path


def _report(tmp_path, leaks, version=1, exercised=()):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"version": version, "command": "app.py", "allowed": ["cuda:1"], "leaks": leaks, "gpus": [], "exercised": list(exercised)}))
    return path


def _leak(project, line, code, source_line, **extra):
    return {
        "code": code, "message": f"{code} at runtime", "filename": str(project / "app.py"), "line": line,
        "function": "prepare", "device": "cuda:0", "kind": "allocation", "count": 2, "bytes": 4096,
        "origin": extra.pop("origin", None), "stack": [], "suggestion": "pass `device=device`",
        "source_line": source_line, **extra,
    }


def _json(run_devlint, project, report, *extra):
    code, out, err = run_devlint("check", project / "app.py", "--runtime-report", report, "--output-format", "json", "--no-cache", *extra)
    return code, json.loads(out) if out.strip().startswith("[") else out, err


def test_leak_both_halves_see_is_one_confirmed_finding_listed_first(run_devlint, project):
    report = _report(project, [_leak(project, 7, "DL005", "    weights = torch.load('w.pth')", created_context=True)])
    code, findings, _ = _json(run_devlint, project, report)
    (load,) = [f for f in findings if f["code"] == "DL005"]
    assert load["runtime"] == {"count": 2, "devices": ["cuda:0"], "bytes": 4096, "context_created": True, "exercised": True}
    code, out, _ = run_devlint("check", project / "app.py", "--runtime-report", report, "--no-cache")
    assert out.splitlines()[0].startswith(f"{project / 'app.py'}:7:15: DL005") and "confirmed at runtime: 2x on cuda:0" in out


def test_library_leak_becomes_a_finding_at_the_callers_line_with_a_fix(run_devlint, project):
    origin = f"{project}/venv/lib/site-packages/facelibx/__init__.py:2 in Helper.__init__"
    report = _report(project, [_leak(project, 6, "DL012", "    helper = Helper(size=64)", origin=origin)])
    code, findings, _ = _json(run_devlint, project, report)
    (found,) = [f for f in findings if f["code"] == "DL012"]
    assert found["location"] == {"row": 6, "column": 14} and found["runtime"]["runtime_only"] is True
    assert found["fix"]["applicability"] == "unsafe" and found["fix"]["edits"][0]["content"] == ", device=device"
    run_devlint("check", project / "app.py", "--runtime-report", report, "--fix", "--unsafe-fixes", "--no-cache")
    assert "    helper = Helper(size=64, device=device)\n" in (project / "app.py").read_text()


def test_static_finding_exercised_without_a_leak_is_marked(run_devlint, project):
    report = _report(project, [], exercised=[{"filename": str(project / "app.py"), "line": 7, "count": 1}])
    _, findings, _ = _json(run_devlint, project, report)
    (load,) = findings
    assert load["runtime"] == {"count": 0, "devices": [], "bytes": 0, "exercised": True}


def test_moved_lines_are_followed_and_changed_ones_are_not_guessed(run_devlint, project):
    report = _report(project, [
        _leak(project, 6, "DL012", "    helper = Helper(size=64)"),
        _leak(project, 7, "DL005", "    weights = torch.load('w.pth')"),
    ])
    text = USER.replace("def prepare(frames, device):\n", "def prepare(frames, device):\n    # a comment added after the run\n")
    text = text.replace("Helper(size=64)", "Helper(size=32)")
    (project / "app.py").write_text(text)
    code, findings, err = _json(run_devlint, project, report)
    (load,) = [f for f in findings if f["code"] == "DL005"]
    assert load["location"]["row"] == 8 and load["runtime"]["count"] == 2  # followed to its new line
    assert not any(f["code"] == "DL012" for f in findings)  # its line changed: not placed anywhere
    assert "changed since the runtime report was written" in err


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "runtime report not found"),
        ("{not json", "is not JSON"),
        ('{"hello": 1}', "is not a devlint runtime report"),
        ('{"version": 99, "leaks": []}', "schema version 99"),
        ('{"version": 1, "leaks": [{"code": "DL001"}]}', "malformed entry"),
    ],
)
def test_unusable_reports_are_a_clear_error(run_devlint, project, content, message):
    path = project / "report.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run_devlint("check", project, "--runtime-report", path)
    assert code == 2 and message in err and "Traceback" not in err


def test_runtime_only_findings_obey_noqa_and_selection(run_devlint, project):
    (project / "app.py").write_text(USER.replace("Helper(size=64)", "Helper(size=64)  # noqa: DL012"))
    report = _report(project, [_leak(project, 6, "DL012", "    helper = Helper(size=64)  # noqa: DL012")])
    _, findings, _ = _json(run_devlint, project, report)
    assert not any(f["code"] == "DL012" for f in findings)
    (project / "app.py").write_text(USER)
    report = _report(project, [_leak(project, 6, "DL012", "    helper = Helper(size=64)")])
    _, findings, _ = _json(run_devlint, project, report, "--ignore", "DL012")
    assert not any(f["code"] == "DL012" for f in findings)


def test_leaks_in_files_that_no_longer_exist_are_named_not_placed(run_devlint, project):
    leak = _leak(project, 3, "DL001", "x.cuda()")
    leak["filename"] = str(project / "deleted.py")
    report = _report(project, [leak])
    code, findings, err = _json(run_devlint, project, report)
    assert "deleted.py, which no longer exists: its 1 leak site(s) were not placed" in err
    assert not any(f["code"] == "DL001" for f in findings)


def test_report_named_in_config_is_merged_and_a_missing_one_is_only_noted(run_devlint, project):
    (project / "pyproject.toml").write_text('[tool.devlint]\nruntime-report = "runs/report.json"\n')
    code, out, err = run_devlint("check", project / "app.py", "--output-format", "json", "--no-cache")
    assert code == 1 and "runs/report.json" in err and "checking without it" in err
    assert [f["runtime"] for f in json.loads(out)] == [None]
    (project / "runs").mkdir()
    _report(project, [_leak(project, 7, "DL005", "    weights = torch.load('w.pth')")]).rename(project / "runs" / "report.json")
    code, out, err = run_devlint("check", project / "app.py", "--output-format", "json", "--no-cache")
    (load,) = json.loads(out)
    assert load["runtime"]["count"] == 2 and err == ""
