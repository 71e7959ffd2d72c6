"""DL002: `"cuda"` / `torch.device("cuda")` used as a device: the current device."""

from __future__ import annotations

from devlint.checks.device_value import DeviceValueCheck
from devlint.static.devices import Kind


class CudaStringWithoutIndex(DeviceValueCheck):
    code = "DL002"
    kind = Kind.CURRENT

    def message(self, text: str, literal, ctx) -> str:
        return (
            f"`{text}` has no device index: it means the current device "
            "(GPU0 unless set_device or CUDA_VISIBLE_DEVICES chose another)"
        )


CHECK = CudaStringWithoutIndex()
