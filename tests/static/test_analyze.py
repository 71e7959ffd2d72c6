"""Bad input never crashes or hangs the checker: it becomes a DL901 finding, and the rest is checked."""

import json
import os

import pytest

LEAK = "import torch\ny = torch.load('w.pth')\n"


def _findings(run_devlint, path, *extra):
    code, out, err = run_devlint("check", path, "--output-format", "json", "--no-cache", "-j", "1", *extra)
    assert "Traceback" not in err
    return code, [(os.path.basename(f["filename"]), f["code"], f["location"]["row"], f["message"]) for f in json.loads(out)]


@pytest.mark.parametrize(
    "name, content, message, row",
    [
        ("syntax.py", b"import torch\ndef f(:\n    pass\n", "syntax error", 2),
        ("py2.py", b"import torch\nprint 'hello'\n", "Python 2 syntax?", 2),
        ("binary.py", b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary file", 1),
        ("undecodable.py", b"import torch\nx = '\xff\xfe'\n", "cannot decode as utf-8", 2),
        ("cookie.py", b"# -*- coding: klingon -*-\nimport torch\n", "bad encoding declaration", 1),
        ("deep.py", b"x = " + b"(" * 1000 + b"1" + b")" * 1000 + b"\n", "too many nested parentheses", 1),
        ("chain.py", b"x = 1" + b" + 1" * 200000 + b"\n", "nested too deeply", 1),
    ],
)
def test_unparsable_file_is_reported_and_the_rest_checked(run_devlint, tmp_path, name, content, message, row):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "ok_leak.py").write_text(LEAK)
    code, found = _findings(run_devlint, tmp_path)
    assert code == 1
    bad = [f for f in found if f[0] == name]
    assert len(bad) == 1 and bad[0][1] == "DL901" and message in bad[0][3] and bad[0][2] == row
    assert ("ok_leak.py", "DL005", 2) in [f[:3] for f in found]


def test_pep263_latin1_file_reports_character_columns(run_devlint, tmp_path):
    text = "# -*- coding: latin-1 -*-\nimport torch\nname = 'café'; w = torch.load('w')\n"
    (tmp_path / "latin.py").write_bytes(text.encode("latin-1"))
    code, out, _ = run_devlint("check", tmp_path, "--output-format", "json")
    (finding,) = json.loads(out)
    assert finding["location"] == {"row": 3, "column": text.splitlines()[2].index("torch.load") + 1}


def test_too_large_file_is_skipped_with_a_finding(run_devlint, tmp_path, monkeypatch):
    from devlint.static import analyze

    monkeypatch.setattr(analyze, "MAX_BYTES", 100)
    (tmp_path / "big.py").write_text("import torch\n" + "x = 1\n" * 50)
    code, found = _findings(run_devlint, tmp_path)
    assert found[0][1:3] == ("DL901", 1) and "too large" in found[0][3]


def test_symlink_loops_do_not_hang(run_devlint, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(LEAK)
    os.symlink(tmp_path, tmp_path / "pkg" / "loop")  # a directory loop
    os.symlink(tmp_path / "b.py", tmp_path / "a.py")  # a file loop
    os.symlink(tmp_path / "a.py", tmp_path / "b.py")
    code, found = _findings(run_devlint, tmp_path)
    assert [f[:2] for f in found] == [("m.py", "DL005")]
    code, found = _findings(run_devlint, tmp_path / "a.py")
    assert found[0][1] == "DL901" and "cannot read file" in found[0][3]


def test_unreadable_file(run_devlint, tmp_path, monkeypatch):
    (tmp_path / "secret.py").write_text(LEAK)
    (tmp_path / "ok.py").write_text(LEAK)

    import pathlib

    original = pathlib.Path.read_bytes

    def read_bytes(self):
        if self.name == "secret.py":
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)
    code, found = _findings(run_devlint, tmp_path)
    assert ("secret.py", "DL901", 1, "cannot read file: Permission denied") in found
    assert ("ok.py", "DL005", 2) in [f[:3] for f in found]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_named_on_the_command_line_does_not_block(run_devlint, tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    code, found = _findings(run_devlint, tmp_path / "pipe.py")
    assert found == [("pipe.py", "DL901", 1, "cannot read file: not a regular file")]


def test_syntax_error_can_be_ignored(run_devlint, tmp_path):
    (tmp_path / "bad.py").write_text("def (:\n")
    assert run_devlint("check", tmp_path, "--ignore", "DL901")[0] == 0
