"""Process-wide wrappers: each table of the catalog, judged before the call, restored after."""

import io
import os
import socket
import threading
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from rt_helpers import next_line, sites

from devlint.runtime.hub import HUB
from devlint.runtime.patches import Patch
from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.usefixtures("tracing_mode")  # every test, in both tracing modes


def _patched_attributes():
    with Tracer("cuda:1"):
        return [(patch.owner, patch.name) for patch in HUB._patches if isinstance(patch, Patch)]


def _values(pairs):
    return [vars(owner).get(name, "<inherited>") for owner, name in pairs]


def test_every_patch_is_restored_exactly(tracing_mode):
    pairs = _patched_attributes()
    before = _values(pairs)
    builtins = dict(torch.jit._builtins._get_builtin_table())
    stack = torch._C._len_torch_function_stack()
    with Tracer("cuda:1"):
        during = _values(pairs)
        assert torch._C._len_torch_function_stack() == stack + (tracing_mode == "thorough")  # the mode only when thorough
        assert len(torch.jit._builtins._get_builtin_table()) > len(builtins)  # the wrapped factories, as TorchScript ops
    assert _values(pairs) == before
    assert all(now is not then for now, then in zip(during, before))
    assert torch._C._len_torch_function_stack() == stack
    assert torch.jit._builtins._get_builtin_table() == builtins


def test_the_catalog_drives_the_patches():
    names = {f"{getattr(owner, '__name__', owner)}.{name}" for owner, name in _patched_attributes()}
    for expected in ("torch.cuda.synchronize", "torch.cuda.mem_get_info", "torch.cuda.FloatTensor", "torch.load", "Stream.__new__", "Event.record", "DataParallel.__init__"):
        assert expected in names
    for expected in ("torch.zeros", "torch.fft.fftfreq", "torch.zeros_like", "Tensor.new_zeros", "Tensor.to", "Tensor.cuda", "Tensor.type"):
        assert expected in names  # DL011's factories, DL002's device keywords, the tensor moves


@pytest.mark.parametrize("exception", [ValueError, KeyboardInterrupt])
def test_patches_are_restored_when_the_traced_code_raises(exception):
    pairs = _patched_attributes()
    before = _values(pairs)
    stack = torch._C._len_torch_function_stack()
    with pytest.raises(exception), Tracer("cuda:1"):
        raise exception()
    assert _values(pairs) == before
    assert HUB.sessions == () and torch._C._len_torch_function_stack() == stack


def test_current_device_calls_are_dl006(tracer, attempt):
    first = next_line()
    attempt(lambda: torch.cuda.synchronize())
    attempt(lambda: torch.cuda.Stream())
    attempt(lambda: torch.cuda.mem_get_info())
    attempt(lambda: torch.cuda.current_blas_handle())
    attempt(lambda: torch.cuda.Event.record(SimpleNamespace()))  # Event().record(): no stream
    attempt(lambda: torch.cuda.Stream.synchronize(SimpleNamespace(device=torch.device("cuda", 0))))
    attempt(lambda: torch.cuda.synchronize("cuda:1"))
    attempt(lambda: torch.cuda.Stream(device=1))
    attempt(lambda: torch.cuda.Stream(stream_id=0, device_index=0, device_type=1))  # wraps an existing stream
    assert sites(tracer.leaks()) == [("DL006", first + i) for i in range(6)]
    assert {leak.kind for leak in tracer.leaks()} == {"context", "allocation"}


def test_selecting_gpu0_is_a_leak_and_selections_are_remembered_per_thread(tracer, attempt):
    line = next_line()
    attempt(lambda: torch.cuda.set_device(0))
    attempt(lambda: torch.cuda.device(0))
    attempt(lambda: torch.cuda.set_device(1))
    assert sites(tracer.leaks()) == [("DL006", line), ("DL008", line + 1)]
    assert HUB.selected[threading.get_ident()] == 1


def test_work_in_a_thread_that_never_selected_a_device_is_dl102(tracer, attempt):
    attempt(lambda: torch.cuda.set_device(1))  # the main thread selects the allowed GPU
    line = next_line()
    worker = threading.Thread(target=lambda: attempt(lambda: torch.ones(1).cuda()))
    worker.start()
    worker.join()
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.device) == ("DL102", line, "cuda:0")
    assert worker.name in leak.message


def test_legacy_constructors_are_dl004_and_still_behave_like_types(tracer, attempt):
    line = next_line()
    attempt(lambda: torch.cuda.FloatTensor(3))
    assert not isinstance(torch.ones(1), torch.cuda.FloatTensor)
    assert torch.cuda.FloatTensor.dtype == torch.float32
    attempt(lambda: torch.ones(1).type(torch.cuda.FloatTensor))  # the real type reaches torch
    assert sites(tracer.leaks()) == [("DL003", line + 3), ("DL004", line)]
    assert "dtype=torch.float32" in tracer.leaks()[0].suggestion


def _checkpoint_saved_on(location):
    """A checkpoint whose tensors carry `location`'s tag, as if saved from that GPU."""
    buffer = io.BytesIO()
    tag = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: location
    try:
        torch.save({"weight": torch.ones(4)}, buffer)
    finally:
        torch.serialization.location_tag = tag
    buffer.seek(0)
    return buffer


def test_loading_a_cuda0_checkpoint_without_map_location_is_dl005(tracer, attempt):
    line = next_line()
    attempt(lambda: torch.load(_checkpoint_saved_on("cuda:0")))
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.device) == ("DL005", line, "cuda:0")
    assert "serialization.py" in leak.origin


@pytest.mark.parametrize(
    "map_location, expected",
    [
        ("cpu", []),
        (lambda storage, location: storage, []),
        ({"cuda:0": "cpu"}, []),
        ("cuda", ["DL002"]),
        ({"cuda:0": "cuda:0"}, ["DL008"]),
    ],
)
def test_map_location_decides(tracer, attempt, map_location, expected):
    attempt(lambda: torch.load(_checkpoint_saved_on("cuda:0"), map_location=map_location))
    assert [leak.code for leak in tracer.leaks()] == expected


def test_a_checkpoint_saved_on_the_allowed_gpu_loads_clean(tracer, attempt):
    attempt(lambda: torch.load(_checkpoint_saved_on("cuda:1")))
    assert tracer.leaks() == []


def test_storages_are_judged(tracer, attempt):
    line = next_line()
    attempt(lambda: torch.UntypedStorage(4, device="cuda"))
    attempt(lambda: torch.UntypedStorage(4).cuda())
    attempt(lambda: torch.UntypedStorage(4).to(device="cuda:0"))
    assert sites(tracer.leaks()) == [("DL001", line + 1), ("DL002", line), ("DL008", line + 2)]
    assert torch.UntypedStorage(4).nbytes() == 4


def test_dataparallel_without_device_ids_is_dl007(tracer, attempt):
    model = torch.nn.Linear(2, 2)
    line = next_line()
    attempt(lambda: torch.nn.DataParallel(model))
    attempt(lambda: torch.nn.DataParallel(model, device_ids=[1]))
    attempt(lambda: torch.nn.DataParallel(model, [1], 1))
    assert sites(tracer.leaks()) == [("DL007", line)]


@pytest.mark.filterwarnings("ignore:torch.set_default_tensor_type\\(\\) is deprecated")
def test_a_cuda_default_tensor_type_is_dl010(tracer, attempt):
    line = next_line()
    attempt(lambda: torch.set_default_tensor_type(torch.cuda.FloatTensor))
    torch.set_default_tensor_type(torch.FloatTensor)
    assert sites(tracer.leaks()) == [("DL010", line)]


def test_cuda_visible_devices_set_after_cuda_initialised_is_dl009(tracer):
    os.environ["CUDA_VISIBLE_DEVICES"] = "1"  # nothing initialised CUDA yet: fine
    init = next_line()
    torch.cuda.is_available()
    os.environ["CUDA_VISIBLE_DEVICES"] = "1"  # the value it has already: changes nothing (a launcher copying its environment)
    line = next_line()
    os.environ["CUDA_VISIBLE_DEVICES"] = "0"
    [leak] = tracer.leaks()
    assert (leak.code, leak.line) == ("DL009", line)
    assert f"test_patches.py:{init}" in leak.message


@pytest.fixture
def process_group():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_barrier_on_an_nccl_group_without_devices_is_dl013(process_group, monkeypatch):
    with Tracer("cuda:1") as tracer:
        dist.barrier()  # gloo: no GPU involved
        monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")
        line = next_line()
        dist.barrier()
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.device) == ("DL013", line, "cuda:0")
    assert "device_id" in leak.suggestion


def test_threads_started_while_tracing_are_traced_and_released(attempt, tracing_mode):
    stacks = []

    def work(go):
        go.wait()
        stacks.append(torch._C._len_torch_function_stack())
        attempt(lambda: torch.zeros(1, device="cuda"))

    early, late = threading.Event(), threading.Event()
    with Tracer("cuda:1") as tracer:
        during = threading.Thread(target=work, args=(early,))
        during.start()
        early.set()
        during.join()
        outliving = threading.Thread(target=work, args=(late,))
        outliving.start()
    late.set()
    outliving.join()  # runs after tracing stopped: its mode (if any) passes everything through
    assert [leak.count for leak in tracer.leaks()] == [1]
    after = threading.Thread(target=work, args=(early,))
    after.start()
    after.join()
    pushed = int(tracing_mode == "thorough")  # only a thorough session needs a mode in each thread
    assert stacks == [pushed, pushed, 0]
