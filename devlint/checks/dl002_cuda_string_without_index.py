"""DL002: `"cuda"` / `torch.device("cuda")` used as a device: the current device."""

from __future__ import annotations

from devlint.checks.device_value import DeviceValueCheck
from devlint.static.values import Value


class CudaStringWithoutIndex(DeviceValueCheck):
    code = "DL002"
    current = True

    def matches(self, value: Value) -> bool:
        return value.current

    def message(self, text: str, literal, ctx) -> str:
        return (
            f"`{text}` has no device index: it means the current device "
            "(GPU0 unless set_device or CUDA_VISIBLE_DEVICES chose another)"
        )


CHECK = CudaStringWithoutIndex()
