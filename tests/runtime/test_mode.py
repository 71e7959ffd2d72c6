"""Factories and tensor moves, judged before they run (a CPU build then fails them), in both tracing modes."""

from types import SimpleNamespace

import pytest
import torch
from rt_helpers import next_line, sites
from torch._subclasses.fake_tensor import FakeTensorMode

from devlint.runtime import placements
from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.usefixtures("tracing_mode")  # every test, in both tracing modes


def test_cuda_without_index_is_dl001(tracer):
    x = torch.ones(2)
    line = next_line()
    try:
        x.cuda()
    except (AssertionError, RuntimeError):  # judged first; a CPU build then fails the call
        pass
    assert sites(tracer.leaks()) == [("DL001", line + 1)]
    leak = tracer.leaks()[0]
    assert (leak.device, leak.kind, leak.function) == ("cuda:0", "allocation", "test_cuda_without_index_is_dl001")
    assert leak.filename == __file__


def test_each_spelling_gets_its_code(tracer, attempt):
    x = torch.ones(2)
    first = next_line()
    attempt(lambda: x.cuda(0))  # DL008
    attempt(lambda: x.to("cuda"))  # DL002
    attempt(lambda: x.to(torch.device("cuda")))  # DL002
    attempt(lambda: x.to("cuda:0"))  # DL008
    attempt(lambda: x.to(2))  # DL103
    attempt(lambda: torch.zeros(2, device="cuda"))  # DL002
    attempt(lambda: torch.zeros_like(x, device="cuda"))  # DL002: any call given device=
    assert sites(tracer.leaks()) == sorted(
        [("DL008", first), ("DL002", first + 1), ("DL002", first + 2), ("DL008", first + 3), ("DL103", first + 4), ("DL002", first + 5), ("DL002", first + 6)]
    )


def test_requests_for_allowed_or_non_gpu_devices_are_not_leaks(tracer, attempt):
    x = torch.ones(2)
    attempt(lambda: x.cuda(1))
    attempt(lambda: x.to("cuda:1"))
    attempt(lambda: torch.zeros(2, device=torch.device("cuda", 1)))
    x.to(torch.float16)
    x.to("cpu")
    torch.zeros(2, device="meta")
    torch.zeros(2)
    x.new_zeros(2)
    assert tracer.leaks() == []


def test_the_current_device_decides_for_unindexed_requests(tracer, attempt, current_device):
    current_device(1)
    x = torch.ones(2)
    attempt(lambda: x.cuda())
    attempt(lambda: x.to("cuda"))
    attempt(lambda: torch.ones(1, device="cuda"))
    assert tracer.leaks() == []


def test_a_tensor_target_means_its_device(tracer, attempt):
    with FakeTensorMode():
        on_gpu0 = torch.zeros(2, device="cuda:0")
        on_gpu1 = torch.zeros(2, device="cuda:1")
        line = next_line()
        torch.ones(2).to(on_gpu0)
        torch.ones(2).to(on_gpu1)
    assert [(leak.code, leak.line) for leak in tracer.leaks() if leak.line == line] == [("DL008", line)]


def test_type_strings_move_cpu_tensors_to_the_current_device(tracer, attempt):
    reference_type = "torch.cuda.FloatTensor"  # what .type() says of a float tensor on any GPU
    line = next_line()
    attempt(lambda: torch.arange(3).type(reference_type))  # .type(x.type()): the index is lost
    torch.arange(3).type(torch.float16)
    torch.arange(3).type("torch.FloatTensor")
    assert sites(tracer.leaks()) == [("DL003", line)]


def test_a_tensor_already_on_a_gpu_keeps_its_device_under_type():
    on_gpu = SimpleNamespace(is_cuda=True)
    assert placements.tensor_type((on_gpu, "torch.cuda.FloatTensor"), {}) is None
    assert placements.tensor_type((torch.ones(1), "torch.cuda.FloatTensor"), {}).code == "DL003"


def test_module_moves_are_seen_per_parameter_and_attributed_to_the_caller(attempt):
    model = torch.nn.Linear(4, 4)
    with FakeTensorMode(allow_non_fake_inputs=True), Tracer("cuda:1") as tracer:
        line = next_line()
        model.to("cuda:0")
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.count, leak.bytes) == ("DL008", line, 2, (16 + 4) * 4)
    assert "torch/nn/modules/module.py" in leak.origin
    assert leak.stack[0].startswith(leak.origin.split(" in ")[0].rsplit(":", 1)[0])


def test_identical_sites_aggregate_count_and_bytes():
    with FakeTensorMode(), Tracer("cuda:1") as tracer:
        for _ in range(3):
            torch.zeros(4, device="cuda")
    [leak] = tracer.leaks()
    assert (leak.count, leak.bytes) == (3, 3 * 16)


def test_default_device_cuda_is_dl010_at_the_setter_and_at_each_factory(tracer, attempt):
    line = next_line()
    torch.set_default_device("cuda")
    try:
        attempt(lambda: torch.zeros(2))
    finally:
        torch.set_default_device(None)
    assert sites(tracer.leaks()) == [("DL010", line), ("DL010", line + 2)]


def test_device_context_cuda_is_dl010_for_factories_but_cuda_ignores_it(tracer, attempt):
    x = torch.ones(2)
    with torch.device("cuda"):
        line = next_line()
        attempt(lambda: torch.ones(2))
    with torch.device("cuda:1"):
        attempt(lambda: torch.ones(2))
        attempt(lambda: x.cuda())  # Tensor.cuda() ignores the default device: still cuda:0
    assert sites(tracer.leaks()) == [("DL001", line + 3), ("DL010", line)]


def test_an_indexed_default_device_on_an_allowed_gpu_is_clean(tracer, attempt):
    with torch.device("cuda:1"):
        attempt(lambda: torch.ones(2))
    assert tracer.leaks() == []


def test_calls_inside_a_traced_call_are_not_judged_twice(tracer, attempt):
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    buffer.seek(0)
    attempt(lambda: torch.load(buffer, map_location="cuda"))  # torch.load's internals place tensors too
    assert [leak.code for leak in tracer.leaks()] == ["DL002"]


def test_a_device_context_entered_before_tracing_is_seen(attempt):
    with torch.device("cuda"), Tracer("cuda:1") as tracer:
        line = next_line()
        attempt(lambda: torch.ones(2))
    assert sites(tracer.leaks()) == [("DL010", line)]
