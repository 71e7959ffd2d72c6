"""--fix, --unsafe-fixes and --diff: fixes compose, and files are never corrupted."""

import os
import stat


from devlint.check import fix as fixing
from devlint.check import write
from devlint.findings import Applicability, Edit, Fix, Location
from devlint.check.snippet import fix_text as fix_source
from devlint.static.source import Source

BODY = "import torch\n\n\ndef step(model, x, device):\n    y = model.cuda()(x.cuda())\n    torch.cuda.synchronize()\n    return torch.load('w.pth'), y\n"


def test_several_fixes_on_one_line_compose():
    fixed, remaining = fix_source(BODY, unsafe=True)
    assert fixed == (
        "import torch\n\n\ndef step(model, x, device):\n"
        "    y = model.to(device)(x.to(device))\n"
        "    torch.cuda.synchronize(device)\n"
        "    return torch.load('w.pth', map_location=device), y\n"
    )
    assert remaining == []


def test_safe_only_leaves_unsafe_fixes():
    fixed, remaining = fix_source(BODY, unsafe=False)
    assert "map_location" not in fixed and "model.to(device)" in fixed
    assert [f.code for f in remaining] == ["DL005"]


def test_nested_fixes_compose_over_rounds():
    source = "import torch\n\ndef f(x, device):\n    return torch.load(x.cuda()).cuda()\n"
    fixed, remaining = fix_source(source, unsafe=True)
    assert fixed.endswith("return torch.load(x.to(device), map_location=device).to(device)\n")
    assert remaining == []


def test_fix_adds_import_torch_only_when_needed():
    source = "from torch.cuda import FloatTensor\n\n\ndef f(n, device):\n    return FloatTensor(n, 3)\n"
    fixed, _ = fix_source(source, unsafe=True)
    assert fixed == (
        "import torch\nfrom torch.cuda import FloatTensor\n\n\n"
        "def f(n, device):\n    return torch.empty(n, 3, dtype=torch.float32, device=device)\n"
    )
    aliased = "import torch as th\n\n\ndef f(n, device):\n    return th.cuda.FloatTensor(n, 3)\n"
    fixed, _ = fix_source(aliased, unsafe=True)
    assert fixed.endswith("return th.empty(n, 3, dtype=th.float32, device=device)\n")
    assert "import torch\n" not in fixed


def test_import_goes_after_docstring_and_future_imports():
    source = '"""Doc."""\nfrom __future__ import annotations\nfrom torch.cuda import LongTensor\n\ndef f(device):\n    return LongTensor([1, 2])\n'
    fixed, _ = fix_source(source, unsafe=True)
    assert fixed.startswith('"""Doc."""\nfrom __future__ import annotations\nimport torch\nfrom torch.cuda import LongTensor\n')


def test_a_fix_that_would_not_parse_is_dropped():
    source = Source("x = 1\ny = 2\n")
    bad = Fix(Applicability.SAFE, "breaks", (Edit("(", Location(1, 1), Location(1, 1)),))
    good = Fix(Applicability.SAFE, "renames", (Edit("z", Location(2, 1), Location(2, 2)),))

    class Finding:
        def __init__(self, fix):
            self.fix = fix

    outcome = fixing.fix_source(source, [Finding(bad), Finding(good)], lambda text: [], unsafe=False)
    assert outcome.text == "x = 1\nz = 2\n"
    assert outcome.dropped == ["fix dropped, the result would not parse: breaks"]


def _project(tmp_path, data: bytes, name="m.py"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


LEAKY = "import torch\n\ndef f(x, device):\n    return x.cuda()\n"
FIXED = "import torch\n\ndef f(x, device):\n    return x.to(device)\n"


def test_crlf_bom_and_permissions_are_kept(run_devlint, tmp_path):
    path = _project(tmp_path, b"\xef\xbb\xbf" + LEAKY.replace("\n", "\r\n").encode())
    os.chmod(path, 0o751)
    code, _, _ = run_devlint("check", tmp_path, "--fix", "--no-cache")
    assert code == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + FIXED.replace("\n", "\r\n").encode()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o751
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]  # no temporary file left behind


def test_pep263_encoding_is_kept(run_devlint, tmp_path):
    text = "# -*- coding: latin-1 -*-\nimport torch\n\ndef f(x, device):\n    s = 'déjà vu'\n    return x.cuda()\n"
    path = _project(tmp_path, text.encode("latin-1"))
    run_devlint("check", tmp_path, "--fix", "--no-cache")
    assert path.read_bytes() == text.replace("x.cuda()", "x.to(device)").encode("latin-1")


def test_fix_writes_through_a_symlink(run_devlint, tmp_path):
    real = _project(tmp_path, LEAKY.encode(), "real.py")
    (tmp_path / "link.py").symlink_to(real)
    run_devlint("check", tmp_path / "link.py", "--fix", "--no-cache")
    assert (tmp_path / "link.py").is_symlink() and real.read_text() == FIXED


def test_second_fix_changes_nothing(run_devlint, tmp_path):
    path = _project(tmp_path, BODY.encode())
    run_devlint("check", tmp_path, "--fix", "--unsafe-fixes", "--no-cache")
    once = path.read_bytes()
    code, out, err = run_devlint("check", tmp_path, "--fix", "--unsafe-fixes", "--no-cache")
    assert path.read_bytes() == once and code == 0


# `device` is never read until the fix of `.to("cuda")` reads it: then the call that omits it
# leaks through the default, which the same --fix must pass, or a second --fix would.
NEVER_READ_UNTIL_FIXED = """\
import torch


def collate(batch, device="cuda"):
    return torch.stack(batch).to("cuda")


def loader(batches, device):
    return [collate(b) for b in batches]
"""


def test_a_fix_that_makes_a_parameter_read_also_fixes_the_calls_that_omit_it(run_devlint, tmp_path):
    path = tmp_path / "data.py"
    path.write_text(NEVER_READ_UNTIL_FIXED)
    run_devlint("check", tmp_path, "--fix", "--unsafe-fixes", "--no-cache")
    once = path.read_text()
    assert ".to(device)" in once and "collate(b, device=device)" in once
    code, _, _ = run_devlint("check", tmp_path, "--fix", "--unsafe-fixes", "--no-cache")
    assert path.read_text() == once and code == 0


def test_diff_prints_and_writes_nothing(run_devlint, tmp_path):
    path = _project(tmp_path, BODY.encode())
    code, out, err = run_devlint("check", tmp_path, "--diff", "--no-cache")
    assert code == 1
    assert out.startswith("--- a/") and "-    y = model.cuda()(x.cuda())" in out and "+    y = model.to(device)(x.to(device))" in out
    assert "map_location" not in out  # unsafe: not without --unsafe-fixes
    assert path.read_bytes() == BODY.encode()
    assert "would be applied" in err
    code, out, _ = run_devlint("check", tmp_path, "--diff", "--unsafe-fixes", "--no-cache")
    assert "map_location=device" in out
    (tmp_path / "m.py").write_text(FIXED)
    assert run_devlint("check", tmp_path, "--diff", "--no-cache")[0] == 0


def test_fix_summary_counts_fixed_and_remaining(run_devlint, tmp_path):
    _project(tmp_path, BODY.encode())
    code, out, _ = run_devlint("check", tmp_path, "--fix", "--no-cache")
    assert code == 1
    assert "Fixed 3 findings in 1 file: " in out and "Found 1 finding in 1 file" in out
    fixed_line = next(line for line in out.splitlines() if line.startswith("Fixed"))
    assert fixed_line.endswith("m.py.")  # the summary names the files a fix changed
    assert "1 more fixable with `--fix --unsafe-fixes`." in out


def test_unwritable_file_is_reported_not_lost(run_devlint, tmp_path, monkeypatch):
    path = _project(tmp_path, LEAKY.encode())

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(write.tempfile, "mkstemp", refuse)
    code, out, err = run_devlint("check", tmp_path, "--fix", "--no-cache", "-j", "1")
    assert code == 1 and "not written" in err and path.read_text() == LEAKY
    assert "DL001" in out
