"""The calls both modes judge: every torch call that takes a `device` is one of them."""

import torch

from devlint import catalog
from devlint.runtime import placements

# Take a device but place no tensor there: a generator (DL006's no_effect), pinned host memory.
NOT_PLACEMENTS = {"torch.Generator", "torch.Tensor.pin_memory", "torch.Tensor.is_pinned"}


def _torch_calls_taking_a_device() -> set[str]:
    """Public torch functions and Tensor methods whose native schema has a `device` argument."""
    names = set()
    for schema in torch._C._jit_get_all_schemas():
        op = schema.name.removeprefix("aten::")
        if op.startswith("_") or not any(argument.name == "device" for argument in schema.arguments):
            continue
        if op.startswith("fft_"):
            names.add(f"torch.fft.{op[4:]}")
        if hasattr(torch, op):
            names.add(f"torch.{op}")
        if hasattr(torch.Tensor, op):
            names.add(f"torch.Tensor.{op}")
    return names


def test_every_torch_call_that_takes_a_device_is_judged():
    judged = {p.name for p in placements.placements()}
    assert _torch_calls_taking_a_device() - NOT_PLACEMENTS <= judged


def test_the_catalog_tables_are_what_is_judged():
    judged = {p.name for p in placements.placements()}
    listed = set(catalog.api("DL011", "factories")) | set(catalog.api("DL002", "device_keyword"))
    assert judged == listed | {"torch.Tensor.cuda", "torch.Tensor.to", "torch.Tensor.type", "torch.Tensor.pin_memory"}
    assert all(p.original is not None and not hasattr(p.original, "__wrapped__") for p in placements.placements())
