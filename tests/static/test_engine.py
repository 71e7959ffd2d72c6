"""The engine calls a check's visit_Call only for the callees it declares (Check.callees):
what it finds must be what calling it for every call finds."""

import json
import shutil
from pathlib import Path

import pytest

from devlint.checks import all_checks
from devlint.static import engine

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

# Callees written every way a check's own test reads them: aliases of torch.cuda names, a
# local holding a legacy type, methods on the current stream, set_device through a name.
ALIASES = """\
import torch
from torch.cuda import FloatTensor as F, synchronize as sync, set_device as pick
from torch import set_default_device as default_device
import torch.cuda as tc

Tensor = torch.cuda.FloatTensor if torch.cuda.is_available() else torch.FloatTensor


def run(n):
    a = F(n)
    b = Tensor(n)
    sync()
    tc.synchronize()
    pick(0)
    default_device("cuda")
    torch.cuda.current_stream().synchronize()
    event = torch.cuda.Event()
    event.record()
    c = tc.LongTensor(3)
    d = torch.zeros(n).cuda()
    e = torch.ones(n).to("cuda")
    return a, b, c, d, e
"""


def _every_call(monkeypatch):
    for check in all_checks():
        monkeypatch.setattr(check, "callees", lambda: None)


@pytest.mark.parametrize("tree", ["fixtures", "aliases"])
def test_dispatch_by_callee_finds_what_every_call_finds(run_devlint, tmp_path, monkeypatch, tree):
    root = tmp_path / "tree"
    if tree == "fixtures":
        shutil.copytree(FIXTURES, root)
    else:
        root.mkdir()
        (root / "aliases.py").write_text(ALIASES)
    declared = [c.code for c in all_checks() if c.callees() is not None]
    assert {"DL001", "DL004", "DL006", "DL010", "DL011"} <= set(declared)
    args = ("check", root, "--no-cache", "-j", "1", "--output-format", "json")
    _, by_callee, _ = run_devlint(*args)
    with monkeypatch.context() as patch:
        _every_call(patch)
        _, every_call, _ = run_devlint(*args)
    assert by_callee == every_call
    if tree == "aliases":
        codes = {f["code"] for f in json.loads(by_callee)}
        assert {"DL004", "DL006", "DL010", "DL011"} <= codes


def test_a_call_reaches_only_the_checks_that_name_its_callee():
    dispatch = engine.dispatch_table(all_checks())
    on_cuda = {h.__self__.code for h in dispatch.by_attribute["cuda"]}
    on_zeros = {h.__self__.code for h in dispatch.by_attribute.get("zeros", dispatch.other_attributes)}
    assert {"DL001", "DL011"} <= on_cuda
    assert not {"DL001", "DL004", "DL006", "DL010", "DL011"} & on_zeros
    assert "DL004" in {h.__self__.code for h in dispatch.not_attributes}
