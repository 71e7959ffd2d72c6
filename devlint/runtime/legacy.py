"""Stand-ins for the legacy CUDA constructors (`torch.cuda.FloatTensor`, ...).

The constructors are immutable C types that no function mode sees, so the tracer
replaces the `torch.cuda` attributes with stand-ins while it runs. A stand-in judges a
call like any other request, answers `isinstance` and attribute lookups like the type it
stands for, and is swapped back for the real type where torch needs the type itself
(`Tensor.type(...)`, `torch.set_default_tensor_type(...)`).
"""

from __future__ import annotations

import torch

from devlint.runtime.devices import Target, current_index, target
from devlint.runtime.requests import placement


class LegacyConstructor:
    def __init__(self, name: str, original: type, dtype: str, hub) -> None:
        self._name = name
        self._original = original
        self._dtype = dtype
        self._hub = hub

    def __call__(self, *args, **kwargs):
        spec = kwargs.get("device")
        where = target(spec) if spec is not None else Target(current_index(), True)
        request = None
        if where is not None:
            request = placement(
                where,
                f"`torch.cuda.{self._name}(...)`",
                "DL004",
                f"use a factory with a device: `torch.empty(size, dtype={self._dtype}, device={{device}})` or `torch.tensor(data, dtype={self._dtype}, device={{device}})`",
            )
        return self._hub.intercept(request, lambda: self._original(*args, **kwargs))

    def __instancecheck__(self, instance) -> bool:
        return isinstance(instance, self._original)

    def __subclasscheck__(self, subclass) -> bool:
        return issubclass(subclass, self._original)

    def __getattr__(self, name):
        return getattr(self._original, name)

    def __repr__(self) -> str:
        return repr(self._original)


def unwrap(value):
    """The real type behind a stand-in; anything else unchanged."""
    return value._original if isinstance(value, LegacyConstructor) else value


def is_cuda_type(value) -> bool:
    """A CUDA tensor type, by type object or name (`torch.cuda.FloatTensor`)."""
    if isinstance(value, str):
        return value.startswith("torch.cuda.")
    return value is not None and not isinstance(value, torch.dtype) and bool(getattr(unwrap(value), "is_cuda", False))
