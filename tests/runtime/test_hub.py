"""The hub's memo: where a request comes from is worked out once per call site and request."""

import sys
import textwrap

import pytest
import torch
from rt_helpers import next_line, sites

from devlint.runtime import attribution
from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.usefixtures("tracing_mode")  # every test, in both tracing modes


def test_one_site_asking_for_different_devices_is_judged_per_request(attempt):
    with Tracer("cuda:1") as tracer:
        for device in ["cuda:1", "cuda:0", "cuda:1", "cuda:2", "cuda", "cuda:0"]:
            line = next_line()
            attempt(lambda: torch.zeros(1, device=device))
    assert sorted((leak.code, leak.line, leak.device, leak.count) for leak in tracer.leaks()) == [
        ("DL002", line, "cuda:0", 1),
        ("DL008", line, "cuda:0", 2),
        ("DL103", line, "cuda:2", 1),
    ]


def test_a_leak_after_10000_allowed_calls_at_one_site_is_reported_and_the_stack_walked_once(monkeypatch):
    walks = []
    locate = attribution.locate
    monkeypatch.setattr(attribution, "locate", lambda frame: walks.append(frame) or locate(frame))
    x = torch.ones(1)
    with Tracer("cuda:1", exercised=True) as tracer:
        for step in range(10_001):
            try:
                line = next_line()
                x.to("cuda:1" if step < 10_000 else "cuda:0")  # judged, then refused by a CPU build
            except (RuntimeError, AssertionError):
                pass
    assert sites(tracer.leaks()) == [("DL008", line)]
    assert tracer.recorder.exercised() == [{"filename": __file__, "line": line, "count": 10_000}]
    assert len(walks) == 2  # once for the allowed request, once for the leaking one


def _function_in(filename: str, source: str):
    namespace = {"torch": torch}
    exec(compile(textwrap.dedent(source), filename, "exec"), namespace)
    return namespace["make"]


def test_the_memo_is_keyed_on_code_locations_never_on_identity(tmp_path, attempt):
    source = """
    def make():
        return torch.zeros(1, device="cuda")
    """
    first, second = str(tmp_path / "first.py"), str(tmp_path / "second.py")
    with Tracer("cuda:1") as tracer:
        attempt(_function_in(first, source))  # equal code objects, in different files
        attempt(_function_in(second, source))
        for step in range(3):  # a function made anew each time (its code may reuse a freed object's id)
            attempt(_function_in(str(tmp_path / f"made_{step}.py"), "\n" * step + source))
    found = sorted((leak.filename, leak.line) for leak in tracer.leaks())
    assert found == sorted([(first, 3), (second, 3), *((str(tmp_path / f"made_{step}.py"), 3 + step) for step in range(3))])


LIBRARY = """
import torch

def init_model(device="cuda"):
    return torch.zeros(2, device=device)
"""


def test_one_library_line_reached_from_two_user_lines_is_two_sites(tmp_path, monkeypatch, attempt):
    package = tmp_path / "site-packages" / "memolib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(LIBRARY)
    monkeypatch.syspath_prepend(str(package.parent))
    import memolib

    try:
        with Tracer("cuda:1") as tracer:
            for _ in range(2):
                first = next_line()
                attempt(lambda: memolib.init_model())
                attempt(lambda: memolib.init_model())
    finally:
        sys.modules.pop("memolib", None)
    assert sorted((leak.code, leak.line, leak.count) for leak in tracer.leaks()) == [("DL012", first, 2), ("DL012", first + 1, 2)]
