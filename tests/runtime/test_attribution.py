"""Attribution: the user's line, the library inside it, and what to pass there."""

import os
import sys
import textwrap

import pytest
import torch
from rt_helpers import next_line
from torch._subclasses.fake_tensor import FakeTensorMode

from devlint.runtime import attribution
from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.usefixtures("tracing_mode")  # every test, in both tracing modes

LIBRARY = '''
import torch


class Enhancer:
    """Defaults its device to 'cuda' when given none, like GFPGANer."""

    def __init__(self, model_path="weights.pth", device=None):
        if device is None:
            device = torch.device("cuda")
        self.device = device
        self.weights = torch.zeros(4).to(self.device)


def init_model(name, device="cuda"):
    return torch.zeros(2, device=device)
'''


@pytest.fixture
def facelib(tmp_path, monkeypatch):
    """A third-party package, installed where libraries live (a site-packages directory)."""
    package = tmp_path / "site-packages" / "facelib_fake"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(LIBRARY))
    monkeypatch.syspath_prepend(str(package.parent))
    import facelib_fake

    yield facelib_fake
    sys.modules.pop("facelib_fake", None)


@pytest.mark.parametrize(
    "filename, library",
    [
        (torch.__file__, True),
        (attribution.__file__, True),
        (os.__file__, True),
        ("/venv/lib/python3.12/site-packages/gfpgan/utils.py", True),
        ("/usr/lib/python3/dist-packages/numpy/core.py", True),
        ("<frozen runpy>", True),
        ("<string>", False),
        (__file__, False),
    ],
)
def test_library_code_is_torch_devlint_stdlib_and_installed_packages(filename, library):
    assert (attribution.kind(filename) != "user") is library


def test_a_leak_inside_a_library_is_reported_at_the_call_that_omitted_device(facelib, attempt):
    with Tracer("cuda:1") as tracer:
        line = next_line()
        attempt(lambda: facelib.Enhancer("weights.pth"))
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.filename) == ("DL012", line, __file__)
    assert "facelib_fake/__init__.py:12 in Enhancer.__init__" in leak.origin
    assert "`Enhancer()` was called without `device`" in leak.message
    assert "pass `device=" in leak.suggestion and "to `Enhancer()`" in leak.suggestion
    assert leak.stack[0].endswith("in Enhancer.__init__") and leak.stack[1].startswith(f"{__file__}:{line}")


def test_a_library_given_the_allowed_device_is_clean(facelib, attempt):
    with Tracer("cuda:1") as tracer:
        attempt(lambda: facelib.init_model("retinaface", device="cuda:1"))
    assert tracer.leaks() == []


def test_the_suggestion_names_a_local_that_holds_the_allowed_device(facelib, attempt):
    device = torch.device("cuda", 1)
    with Tracer("cuda:1") as tracer:
        attempt(lambda: facelib.init_model("retinaface") if device else None)
    assert tracer.leaks()[0].suggestion == "pass `device=device` to `init_model()`"


def test_a_user_function_that_left_device_at_its_default_is_named(attempt):
    def load_model(path, device="cuda"):
        return torch.zeros(2, device=device)

    with Tracer("cuda:1") as tracer:
        line = next_line()
        attempt(lambda: load_model("weights.pth"))
    [leak] = tracer.leaks()
    assert leak.code == "DL002"  # the site is the user's own callee: its line is the one to change
    assert leak.suggestion.endswith(f"load_model()` called at {attribution.short_path(__file__)}:{line} left `device` at its default 'cuda': pass `device='cuda:1'` there")


@pytest.mark.parametrize(
    "name, value, expression",
    [
        ("device", torch.device("cuda", 1), "device"),
        ("target", "cuda:1", "target"),
        ("local_rank", 1, 'f"cuda:{local_rank}"'),
    ],
)
def test_locals_holding_the_allowed_device_become_the_suggestion(name, value, expression):
    namespace = {name: value, "torch": torch}
    with Tracer("cuda:1") as tracer:
        exec("try:\n    torch.ones(2).cuda()\nexcept (AssertionError, RuntimeError):\n    pass", namespace)
    assert tracer.leaks()[0].suggestion == f"use `.to({expression})`"


def test_self_attributes_are_candidates():
    class Renderer:
        def __init__(self):
            self.device = "cuda:1"

        def render(self):
            with FakeTensorMode():
                frames = torch.zeros(2, device="cuda:1")
                return frames, torch.zeros(2, device="cuda")

    with Tracer("cuda:1") as tracer:
        Renderer().render()
    assert tracer.leaks()[0].suggestion == "pass `device=self.device`"


def test_a_tensor_on_the_allowed_device_is_a_candidate():
    with FakeTensorMode(), Tracer("cuda:1") as tracer:
        frames = torch.zeros(2, device="cuda:1")
        torch.zeros(2, device="cuda:0")
    assert frames.device.index == 1
    assert tracer.leaks()[0].suggestion == "use frames.device instead of GPU0"


def test_without_a_local_the_suggestion_spells_the_allowed_device(attempt):
    with Tracer(["cuda:2", "cuda:3"]) as tracer:
        attempt(lambda: torch.zeros(2, device="cuda"))
    assert tracer.leaks()[0].suggestion == "pass `device='cuda:2'`"
