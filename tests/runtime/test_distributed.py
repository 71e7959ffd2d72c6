"""Distributed checks, in one process with a one-rank gloo group. NCCL's device choices are
judged before the call runs, so a test that says the backend is NCCL sees them on the CPU."""

import pytest
import torch
import torch.distributed as dist
from rt_helpers import next_line

from devlint.runtime.tracer import Tracer

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built")


class OnGpu:
    """Stands for a tensor on cuda:0 (a CPU build cannot make one): only its device is read."""

    device = torch.device("cuda", 0)


@pytest.fixture
def group(tmp_path):
    """A tracer for cuda:1 around a one-rank gloo process group; yields (tracer, init line)."""
    with Tracer("cuda:1") as tracer:
        line = next_line()
        dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
        try:
            yield tracer, line
        finally:
            dist.destroy_process_group()


@pytest.fixture
def nccl(monkeypatch):
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")


def codes(tracer):
    return sorted((leak.code, leak.line, leak.device) for leak in tracer.leaks())


def test_a_collective_on_another_gpus_tensors_is_reported_with_the_rank(group, attempt):
    tracer, _ = group
    line = next_line()
    attempt(lambda: dist.all_reduce(OnGpu()))
    attempt(lambda: dist.all_reduce(torch.ones(1)))  # on the CPU: fine
    [leak] = tracer.leaks()
    assert (leak.code, leak.line, leak.device) == ("DL104", line, "cuda:0")
    assert leak.message == "`all_reduce()` on rank 0 runs on cuda:0, where its tensors are (and builds a communicator there)"


def test_an_nccl_barrier_on_the_wrong_current_device_and_a_guessed_one(group, nccl, current_device, attempt):
    tracer, init_line = group
    current_device(2)
    line = next_line()
    attempt(lambda: dist.barrier())
    assert codes(tracer) == [
        ("DL013", init_line, "cuda:0"),  # init_process_group without device_id, reported where the fix goes
        ("DL013", init_line, "cuda:2"),
        ("DL013", line, "cuda:0"),  # the communicator on a device guessed from the rank (0 % GPUs)
        ("DL104", line, "cuda:2"),  # the barrier's tensor on the current device
    ]
    by_site = {(leak.line, leak.device): leak for leak in tracer.leaks()}
    assert "a collective later ran on cuda:0, a device NCCL chose by itself" in by_site[(init_line, "cuda:0")].message
    assert by_site[(init_line, "cuda:0")].suggestion.startswith("pass `device_id=torch.device('cuda:1')` to `init_process_group`")
    attempt(lambda: dist.barrier(device_ids=[1]))  # told its device: nothing new
    assert len(tracer.leaks()) == 4


def test_an_nccl_barrier_after_a_collective_uses_that_device_and_no_guess(group, nccl, current_device, attempt):
    tracer, _ = group
    current_device(1)
    attempt(lambda: dist.all_reduce(OnGpu()))
    attempt(lambda: dist.barrier())
    assert [leak.code for leak in tracer.leaks()] == ["DL104"]  # only the all_reduce: the barrier is on cuda:1


def test_object_collectives_under_nccl_stage_on_the_current_device(group, nccl, current_device, attempt):
    tracer, init_line = group
    current_device(0)
    line = next_line()
    attempt(lambda: dist.broadcast_object_list([1], src=0))
    assert codes(tracer) == [("DL013", init_line, "cuda:0"), ("DL104", line, "cuda:0")]


def test_gloo_barriers_and_cpu_collectives_are_clean(group, current_device, attempt):
    tracer, _ = group
    current_device(0)
    attempt(lambda: dist.barrier())
    attempt(lambda: dist.broadcast_object_list([1], src=0))
    assert tracer.leaks() == []
