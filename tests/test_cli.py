"""The `devlint check` contract: exit codes, selection, suppression, output, errors."""

import json
import subprocess
import sys
import textwrap

import pytest

LEAK = "import torch\nx = torch.zeros(3).cuda()\ny = torch.load('w.pth')\n"


@pytest.fixture
def project(tmp_path):
    (tmp_path / "leak.py").write_text(LEAK)
    (tmp_path / "clean.py").write_text("import torch\nx = torch.zeros(3, device='cuda:1')\n")
    return tmp_path


def _codes(out):
    return sorted(f["code"] for f in json.loads(out))


def test_exit_codes(run_devlint, project):
    assert run_devlint("check", project / "clean.py")[0] == 0
    assert run_devlint("check", project)[0] == 1
    assert run_devlint("check", project, "--exit-zero")[0] == 0
    assert run_devlint("check", project, "--select", "DL999")[0] == 2
    assert run_devlint("check", project / "missing.py")[0] == 2


def test_text_output_is_path_line_col_code_message(run_devlint, project):
    code, out, _ = run_devlint("check", project / "leak.py")
    first = out.splitlines()[0]
    assert first.startswith(f"{project / 'leak.py'}:2:5: DL011 ")
    assert "fix" in out.splitlines()[1]
    assert out.rstrip().splitlines()[-2].startswith("Found 2 findings in 1 file")


def test_clean_summary(run_devlint, project):
    _, out, _ = run_devlint("check", project / "clean.py")
    assert out.strip() == "No device leaks found in 1 file."


def test_select_and_ignore_on_the_command_line(run_devlint, project):
    assert _codes(run_devlint("check", project, "--output-format", "json", "--select", "DL005")[1]) == ["DL005"]
    # with DL011 off, the `.cuda()` of the factory chain is reported by DL001 instead
    assert _codes(run_devlint("check", project, "--output-format", "json", "--ignore", "DL005,DL011")[1]) == ["DL001"]
    assert _codes(run_devlint("check", project, "--output-format", "json", "--ignore", "DL0")[1]) == []
    # prefixes select families
    assert _codes(run_devlint("check", project, "--output-format", "json", "--select", "DL01")[1]) == ["DL011"]


def test_config_in_pyproject_and_cli_precedence(run_devlint, project):
    (project / "pyproject.toml").write_text('[tool.devlint]\nignore = ["DL005"]\n')
    assert _codes(run_devlint("check", project, "--output-format", "json")[1]) == ["DL011"]
    # --select on the command line wins over the configured ignore
    assert _codes(run_devlint("check", project, "--output-format", "json", "--select", "DL005")[1]) == ["DL005"]
    (project / "pyproject.toml").write_text('[tool.devlint]\nselect = ["DL005"]\n')
    assert _codes(run_devlint("check", project, "--output-format", "json", "--ignore", "DL005")[1]) == []
    assert _codes(run_devlint("check", project, "--output-format", "json", "--extend-select", "DL011")[1]) == ["DL005", "DL011"]


def test_per_file_ignores(run_devlint, project):
    (project / "pyproject.toml").write_text('[tool.devlint.per-file-ignores]\n"leak.py" = ["DL011"]\n')
    assert _codes(run_devlint("check", project, "--output-format", "json")[1]) == ["DL005"]


@pytest.mark.parametrize(
    "config, message",
    [
        ('[tool.devlint]\nselect = ["DL9999"]\n', "unknown rule selector"),
        ('[tool.devlint]\nselct = ["DL001"]\n', "unknown option"),
        ("[tool.devlint\n", "invalid TOML"),
        ('[tool.devlint]\nselect = 3\n', "must be a list"),
        ('[tool.devlint]\nruntime-report = ["a.json"]\n', "`runtime-report` must be a path"),
    ],
)
def test_config_errors_exit_2_with_one_line(run_devlint, project, config, message):
    (project / "pyproject.toml").write_text(config)
    code, out, err = run_devlint("check", project)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert out == ""


def test_the_nearest_pyproject_with_a_devlint_table_is_the_config(run_devlint, tmp_path):
    """A package's own pyproject.toml without [tool.devlint] (even one that does not parse)
    does not hide the project's configuration above it."""
    (tmp_path / "pyproject.toml").write_text('[tool.devlint]\nselect = ["DL011"]\n')
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "pyproject.toml").write_text("[project\nname = 'pkg'\n")
    (package / "leak.py").write_text("import torch\nw = torch.load('w')\nx = torch.zeros(2).cuda()\n")
    assert _codes(run_devlint("check", package, "--output-format", "json")[1]) == ["DL011"]


def test_noqa_line_and_file(run_devlint, tmp_path):
    (tmp_path / "a.py").write_text(
        "import torch\n"
        "a = torch.load('a')  # noqa: DL005\n"
        "b = torch.load('b')  # noqa\n"
        "c = torch.load('c')  # noqa: DL001\n"
        "s = '# noqa'; d = torch.load('d')\n"
    )
    (tmp_path / "b.py").write_text("# devlint: noqa\nimport torch\nx = torch.load('x')\n")
    (tmp_path / "c.py").write_text("# devlint: noqa: DL011\nimport torch\nx = torch.load('x')\n")
    out = json.loads(run_devlint("check", tmp_path, "--output-format", "json")[1])
    rows = sorted((f["filename"].rsplit("/", 1)[1], f["location"]["row"]) for f in out)
    assert rows == [("a.py", 4), ("a.py", 5), ("c.py", 3)]


def test_noqa_on_the_last_line_of_a_multiline_call(run_devlint, tmp_path):
    (tmp_path / "a.py").write_text("import torch\nx = torch.load(\n    'a',\n)  # noqa: DL005\n")
    assert run_devlint("check", tmp_path)[0] == 0


def test_rules_and_rule_commands(run_devlint):
    code, out, _ = run_devlint("rules")
    assert code == 0 and "DL005  load-without-map-location" in out
    code, out, _ = run_devlint("rule", "DL005")
    assert code == 0 and out.startswith("# DL005 load-without-map-location") and "map_location" in out
    code, out, _ = run_devlint("rule", "load-without-map-location", "--output-format", "json")
    assert json.loads(out)["code"] == "DL005"
    code, _, err = run_devlint("rule", "DL777")
    assert code == 2 and "unknown rule" in err


def test_check_never_imports_torch(tmp_path):
    (tmp_path / "m.py").write_text(LEAK)
    script = textwrap.dedent(
        f"""
        import sys
        from devlint.cli import cli
        try:
            cli(["check", {str(tmp_path)!r}, "-j", "2"])
        except SystemExit as exc:
            assert exc.code == 1, exc.code
        finally:
            assert "torch" not in sys.modules, "devlint check imported torch"
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_console_script_runs(project):
    result = subprocess.run([sys.executable, "-m", "devlint", "check", str(project)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "DL005" in result.stdout and result.stderr == ""


def test_internal_errors_are_one_line(monkeypatch, tmp_path):
    """An unexpected exception reaches the user as one line and exit 2, not a traceback."""
    (tmp_path / "m.py").write_text(LEAK)
    script = (
        "import devlint.check.lint, sys\n"
        "def boom(*a, **k): raise RuntimeError('boom')\n"
        "devlint.check.lint.lint = boom\n"
        "from devlint.cli import main\n"
        f"sys.argv = ['devlint', 'check', {str(tmp_path)!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 2
    assert "internal error (RuntimeError: boom)" in result.stderr
    assert "Traceback" not in result.stderr


def test_messages_quoting_multiline_code_stay_on_one_line(run_devlint, tmp_path):
    (tmp_path / "m.py").write_text("import torch\nnet = Net(\n    width=3,\n).cuda()\n")
    code, out, _ = run_devlint("check", tmp_path, "--output-format", "json")
    (finding,) = json.loads(out)
    assert "\n" not in finding["message"] and "`Net( width=3, ).cuda()`" in finding["message"]


def test_server_without_its_extra_says_how_to_install_it():
    script = textwrap.dedent(
        """
        import sys

        class NoPygls:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pygls", "lsprotocol"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoPygls())
        from devlint.cli import main
        sys.argv = ["devlint", "server"]
        main()
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "devlint: error: `devlint server` needs the `server` extra: pip install 'devlint[server]'"
