"""A device passed to another module's function, by position, is judged by what that function does with it."""

from devlint.check.snippet import lint_modules

UTILS = """\
import torch


def load_net(path, device):
    net = torch.jit.load(path, map_location="cpu")
    return net.to(device)


def describe(path, device):
    if device == "cuda":
        return path + " (gpu)"
    return path
"""


def _found(caller: str) -> list[tuple[str, int, str]]:
    findings = lint_modules({"models/utils.py": UTILS, "app.py": caller})
    return [(f.filename, f.location.row, f.code) for f in findings]


def test_the_current_device_passed_to_a_parameter_used_as_a_device_is_reported_at_the_call():
    caller = "from models.utils import load_net\n\nnet = load_net('net.pt', 'cuda')\n"
    assert _found(caller) == [("app.py", 3, "DL002")]


def test_gpu0_passed_the_same_way_is_reported():
    caller = "from models import utils\n\n\ndef build():\n    return utils.load_net('net.pt', 'cuda:0')\n"
    assert _found(caller) == [("app.py", 5, "DL008")]


def test_a_parameter_the_function_only_compares_is_not_a_device():
    caller = "from models.utils import describe\n\nprint(describe('net.pt', 'cuda'))\n"
    assert _found(caller) == []
