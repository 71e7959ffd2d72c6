import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from devlint.runtime import devices
from devlint.runtime.devices import Allowed, DeviceError, Target, parse_allowed, target, visible_ids
from devlint.runtime.requests import placement


@pytest.mark.parametrize(
    "specs, expected",
    [
        ("cuda:1", {1}),
        (["cuda:1", "2"], {1, 2}),
        (3, {3}),
        (torch.device("cuda", 2), {2}),
        ("cpu", set()),
        (["CUDA:0"], {0}),
    ],
)
def test_allowed_devices_are_parsed(specs, expected):
    assert parse_allowed(specs, environ={}).indices == expected


def test_allowed_devices_come_from_the_environment_when_not_given():
    assert parse_allowed(None, environ={"DEVLINT_DEVICE": "cuda:1, cuda:3"}).indices == {1, 3}


def test_auto_is_the_local_rank_under_torchrun():
    assert parse_allowed("auto", environ={"LOCAL_RANK": "3", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}).indices == {3}


def test_auto_is_the_single_visible_gpu():
    assert parse_allowed("auto", environ={"CUDA_VISIBLE_DEVICES": "GPU-1234"}).indices == {0}


@pytest.mark.parametrize(
    "spec, environ, words",
    [
        ("auto", {"CUDA_VISIBLE_DEVICES": "0,1"}, "2 GPUs are visible"),
        ("auto", {"CUDA_VISIBLE_DEVICES": ""}, "no GPU is visible"),
        ("auto", {"LOCAL_RANK": "x"}, "not a GPU index"),
        ("cuda", {}, "names no GPU"),
        ("gpu1", {}, "is not a device"),
    ],
)
def test_unusable_devices_are_usage_errors(spec, environ, words):
    with pytest.raises(DeviceError, match=words):
        parse_allowed(spec, environ=environ)


def test_labels_name_the_allowed_gpus_or_the_cpu():
    assert Allowed(frozenset({2, 0})).labels == ["cuda:0", "cuda:2"]
    assert Allowed(frozenset()).first == "cpu"


@pytest.mark.parametrize(
    "raw, expected",
    [("1,0", ["1", "0"]), ("GPU-ab12, 3", ["GPU-ab12", "3"]), ("1,,2", ["1"]), ("1,x,2", ["1"]), ("", [])],
)
def test_visible_devices_are_read_like_the_driver(raw, expected):
    assert visible_ids({"CUDA_VISIBLE_DEVICES": raw}) == expected


def test_visible_devices_unset_means_all():
    assert visible_ids({}) is None


def test_the_current_device_is_zero_before_cuda_is_initialised():
    assert not torch.cuda.is_initialized()
    assert devices.current_index() == 0


def test_the_current_device_is_read_from_the_runtime_once_initialised(current_device):
    current_device(1)
    assert devices.current_index() == 1


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("cuda", Target(0, True)),
        (torch.device("cuda"), Target(0, True)),
        ("cuda:3", Target(3, False)),
        (b"cuda:3", Target(3, False)),
        (torch.device("cuda", 2), Target(2, False)),
        (1, Target(1, False)),
        (-1, None),
        (True, None),
        (None, None),
        ("cpu", None),
        ("meta", None),
        (torch.device("cpu"), None),
        (torch.zeros(1), None),
    ],
)
def test_requests_resolve_to_a_gpu_or_none(spec, expected):
    assert target(spec) == expected


def test_unindexed_cuda_follows_the_current_device(current_device):
    current_device(1)
    assert target("cuda") == Target(1, True)


def test_objects_carrying_a_device_resolve_to_it():
    class Stream:
        device = torch.device("cuda", 1)

    assert target(Stream()) == Target(1, False)


@given(st.integers(min_value=0, max_value=64))
def test_every_way_of_writing_an_index_means_the_same_gpu(index):
    assert target(index) == target(f"cuda:{index}") == target(torch.device("cuda", index)) == Target(index, False)


@pytest.mark.parametrize(
    "where, code",
    [(Target(0, True), "DL001"), (Target(1, True), "DL001"), (Target(0, False), "DL008"), (Target(2, False), "DL103")],
)
def test_a_placement_is_coded_by_how_its_index_was_chosen(where, code):
    request = placement(where, "`.cuda()`", "DL001", "use `.to({device})`")
    assert (request.code, request.index, request.via_current) == (code, where.index, where.via_current)
