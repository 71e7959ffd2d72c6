"""A very large module checked in parts (static/parts.py) gives exactly the findings and
fixes of the module checked whole, or is checked whole."""

import sys
from pathlib import Path

import pytest

from devlint import catalog
from devlint.check import lint as linter
from devlint.check import thread
from devlint.check.discover import discover
from devlint.check.suppress import Suppression
from devlint.checks import all_checks
from devlint.config import Settings
from devlint.output import stream
from devlint.static import analyze, parts
from devlint.static.index import ProjectIndex

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import scale  # noqa: E402  (the generator the benchmark uses)

ALL = frozenset(catalog.load())
CHECKS = all_checks()


def _whole(text: str):
    data = text.encode()
    return analyze.check(data, "m.py", "m", ALL, ProjectIndex(), CHECKS, analyze.parse(data, "m.py")).findings


def _in_parts(text: str, part_lines: int):
    result = analyze.check_in_parts(text.encode(), "m.py", "m", ALL, ProjectIndex(), CHECKS, part_lines)
    return None if result is None else result.findings


# Module-level code that each part answers alone: findings with fixes, a device selected
# before some of them, a `with` around others, functions and classes, strings and brackets
# spanning lines with lines at column 0 inside them, comments and `else:` at column 0.
MIXED = '''import os
import torch
import torch.nn as nn

x0 = torch.zeros(3).cuda()
y0 = torch.ones(2, device="cuda")
DOC = """
a = torch.zeros(1).cuda()
not code
"""
table = [
1, 2,
3]
if os.environ.get("A"):
    z = torch.randn(4).cuda()
# a comment at column 0
else:
    z = torch.empty(2).to("cuda")


def build(n):
    w = torch.zeros(n).cuda()
    return w.to("cuda:0")


class Net(nn.Module):
    def forward(self, x):
        return torch.zeros(1).cuda() + x


with torch.cuda.device(1):
    inside = torch.zeros(1).cuda()
torch.cuda.set_device(1)
after = torch.zeros(5).cuda()
model = nn.Linear(2, 2).cuda()
'''


@pytest.mark.parametrize("part_lines", [1, 3, 7, 20])
def test_a_mixed_module_in_parts_has_the_findings_of_the_whole(part_lines):
    expected = _whole(MIXED)
    assert len(expected) >= 5
    assert _in_parts(MIXED, part_lines) == expected


@pytest.mark.parametrize("part_lines", [1, 97, 1000])
def test_a_generated_module_in_parts_has_the_findings_of_the_whole(part_lines):
    text = scale._module(3000)
    expected = _whole(text)
    assert len(expected) == 2999
    assert _in_parts(text, part_lines) == expected


def test_generated_functions_in_parts_have_the_findings_and_fixes_of_the_whole():
    text = scale._functions(2000)
    expected = _whole(text)
    assert any(f.fix.threading is not None for f in expected)
    assert _in_parts(text, 50) == expected


@pytest.mark.parametrize(
    "text",
    [
        # a module global one part assigns and another part reads
        "import torch\ndevice = 'cuda'\n" + "x = 1\n" * 5 + "t = torch.zeros(1).to(device)\n",
        # a function defined in one part and called in another
        "import torch\ndef helper():\n    return torch.zeros(1).cuda()\n" + "x = 1\n" * 5 + "y = helper().cuda()\n",
        # an early exit in an earlier part: code after it only runs with one GPU
        "import sys, torch\nif torch.cuda.device_count() > 1:\n    raise SystemExit\n" + "x = 1\n" * 5 + "t = torch.zeros(1).cuda()\n",
    ],
    ids=["global", "function", "early-exit"],
)
def test_a_question_about_another_part_has_the_module_checked_whole(text):
    assert _in_parts(text, 1) is None
    whole = analyze.check(text.encode(), "m.py", "m", ALL, ProjectIndex(), CHECKS)
    assert whole.findings == _whole(text)


def test_a_module_that_does_not_parse_is_checked_whole():
    text = "import torch\n" + "x = torch.zeros(1).cuda()\n" * 10 + "def broken(:\n    pass\n"
    assert _in_parts(text, 2) is None
    [error] = analyze.check(text.encode(), "m.py", "m", ALL, ProjectIndex(), CHECKS).findings
    assert error.code == "DL901" and error.location.row == 12


def test_parts_split_only_where_a_statement_can_start():
    text = 'a = 1\n"""\nb = 2\n"""\n\n# c\nelse_ = 3\nif a:\n    pass\nelse:\n    pass\nd = 4\n'
    source_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"][:-1]
    rows, _ = parts.split(text, source_starts, 1)
    starts = [first for first, _ in rows]
    assert 3 in starts  # `b = 2` inside the string may be tried; parsing joins it back
    assert 6 not in starts and 10 not in starts  # a comment, `else:`
    assert 7 in starts and 12 in starts


def _project_output(root: Path, output_format: str) -> str:
    settings = Settings(root=root)
    files, _ = discover([root], settings)
    result = linter.lint(files, Suppression(settings, settings.enabled(None, [], [])))
    findings, selections = thread.project_findings(result)
    if output_format == "json":
        from devlint.check.fix import materialize

        findings = materialize(findings, result.works)
    return "".join(stream(output_format, findings, files=len(files), show_summary=True, environment=None))


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_a_project_checked_in_parts_gives_the_same_output(tmp_path, monkeypatch, output_format):
    """`devlint check` of a project whose modules go through the parts path (with the
    project's index, threaded fixes planned across modules) says the same, byte for byte."""
    (tmp_path / "mixed.py").write_text(MIXED)
    (tmp_path / "generated.py").write_text(scale._functions(200))
    (tmp_path / "lines.py").write_text(scale._module(500))
    (tmp_path / "caller.py").write_text("from generated import f3\nf3(2)\n")
    whole = _project_output(tmp_path, output_format)
    monkeypatch.setattr(parts, "MIN_BYTES", 0)
    monkeypatch.setattr(parts, "PART_LINES", 5)
    used = []
    real = analyze.check_in_parts
    monkeypatch.setattr(analyze, "check_in_parts", lambda *a, **k: used.append(r := real(*a, **k)) or r)
    assert _project_output(tmp_path, output_format) == whole
    assert sum(r is not None and bool(r.findings) for r in used) >= 2


def test_a_large_module_is_checked_in_parts(monkeypatch):
    """Above MIN_BYTES, the check does not parse the whole module."""
    text = scale._module(2000)
    monkeypatch.setattr(parts, "MIN_BYTES", len(text) - 1)
    monkeypatch.setattr(parts, "PART_LINES", 500)
    whole_parses = []
    real_parse = analyze.parse
    monkeypatch.setattr(analyze, "parse", lambda data, name: whole_parses.append(name) or real_parse(data, name))
    found = analyze.check(text.encode(), "m.py", "m", ALL, ProjectIndex(), CHECKS).findings
    assert not whole_parses
    monkeypatch.setattr(parts, "MIN_BYTES", len(text) + 1)
    assert analyze.check(text.encode(), "m.py", "m", ALL, ProjectIndex(), CHECKS).findings == found
    assert whole_parses
