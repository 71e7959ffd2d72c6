"""The flake8 plugin, through the real flake8: the same findings as `devlint check`, and
flake8's own noqa, --select and --per-file-ignores on top."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("flake8")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FORMAT = "%(path)s:%(row)d:%(col)d: %(code)s"
LEAK = "import torch\n\n\ndef load(path):\n    return torch.load(path)\n\n\ndef move(x):\n    return x.cuda()\n"


def _flake8(*args, cwd):
    """Exit code, the findings as `path:row:col: CODE`, and everything else flake8 said."""
    result = subprocess.run([sys.executable, "-m", "flake8", "--format", FORMAT, *args], cwd=cwd, capture_output=True, text=True)
    lines = [line.removeprefix("./") for line in result.stdout.splitlines()]
    found = [line for line in lines if line.endswith(tuple("0123456789")) and ": DL" in line]
    return result.returncode, found, result.stderr + "\n".join(line for line in lines if line not in found)


def test_flake8_select_dl_reports_exactly_the_expected_findings():
    code, found, said = _flake8("--select", "DL", ".", cwd=FIXTURES)
    assert code == 1 and said == ""
    assert found == (FIXTURES / "expected_findings.txt").read_text().splitlines()


def test_messages_are_devlints(tmp_path):
    (tmp_path / "m.py").write_text(LEAK)
    result = subprocess.run([sys.executable, "-m", "flake8", "--select", "DL", "m.py"], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.splitlines()[0] == (
        "m.py:5:12: DL005 `torch.load` without `map_location` puts each tensor back on the device it was saved from (usually cuda:0)"
    )


def test_flake8_noqa_select_and_per_file_ignores_apply(tmp_path):
    (tmp_path / "m.py").write_text(LEAK.replace("torch.load(path)\n", "torch.load(path)  # noqa: DL005\n"))
    (tmp_path / "other.py").write_text(LEAK)
    assert _flake8("--select", "DL", ".", cwd=tmp_path)[1] == ["m.py:9:12: DL001", "other.py:5:12: DL005", "other.py:9:12: DL001"]
    assert _flake8("--select", "DL005", ".", cwd=tmp_path)[1] == ["other.py:5:12: DL005"]
    assert _flake8("--select", "DL", "--per-file-ignores", "other.py:DL001", ".", cwd=tmp_path)[1] == ["m.py:9:12: DL001", "other.py:5:12: DL005"]
    assert _flake8("--select", "DL", "--disable-noqa", "m.py", cwd=tmp_path)[1] == ["m.py:9:12: DL001"]  # devlint's own noqa still holds


def test_devlint_configuration_applies_first(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.devlint]\nignore = ["DL001"]\nextend-exclude = ["vendored"]\n')
    (tmp_path / "vendored").mkdir()
    (tmp_path / "vendored" / "lib.py").write_text(LEAK)
    (tmp_path / "m.py").write_text(LEAK)
    assert _flake8("--select", "DL", ".", cwd=tmp_path)[1] == ["m.py:5:12: DL005"]


def test_a_bad_devlint_configuration_is_one_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.devlint]\nselect = ["DL9999"]\n')
    (tmp_path / "m.py").write_text(LEAK)
    code, found, err = _flake8("--select", "DL", "m.py", cwd=tmp_path)
    assert code != 0 and "unknown rule selector `DL9999`" in err and "Traceback" not in err


def test_a_runtime_report_named_in_config_is_merged(tmp_path, run_devlint):
    import json

    (tmp_path / "m.py").write_text(LEAK)
    leak = {"code": "DL012", "message": "seen", "filename": str(tmp_path / "m.py"), "line": 4, "device": "cuda:0", "kind": "allocation",
            "count": 1, "bytes": 8, "suggestion": "", "source_line": "def load(path):"}  # a leak the source does not show
    (tmp_path / "report.json").write_text(json.dumps({"version": 1, "leaks": [leak]}))
    (tmp_path / "pyproject.toml").write_text('[tool.devlint]\nruntime-report = "report.json"\n')
    expected = [f"{f['filename'].removeprefix(str(tmp_path) + '/')}:{f['location']['row']}:{f['location']['column']}: {f['code']}"
                for f in json.loads(run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=tmp_path)[1])]
    assert "m.py:4:1: DL012" in expected
    assert sorted(_flake8("--select", "DL", ".", cwd=tmp_path)[1]) == sorted(expected)
    (tmp_path / "report.json").write_text("{not json")
    code, _, err = _flake8("--select", "DL", ".", cwd=tmp_path)
    assert code != 0 and "is not JSON" in err and "Traceback" not in err
