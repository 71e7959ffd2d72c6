"""DL022: transformers' `pipeline(...)` without `device`, which is cuda:0."""

from __future__ import annotations

import ast

from devlint.checks.omitted_option import OmittedOptionCheck
from devlint.static import runtimes
from devlint.static.context import FileContext
from devlint.static.names import argument, keyword

_PLANNED = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})


class HfPipelineWithoutDevice(OmittedOptionCheck):
    code = "DL022"
    unless = ("device_map",)  # a device map decides (DL021 judges it)

    def excused(self, node: ast.Call, ctx: FileContext) -> bool:
        # Under an initialised process group the pipeline keeps the model's device
        # (pipelines/base.py:880-881), and the launcher chose that.
        if runtimes.mentions(ctx, "init_process_group") and ctx.device_selected_before(node):
            return True
        return _planned(argument(node, "model", 1), ctx)


def _planned(model: ast.expr | None, ctx: FileContext) -> bool:
    """Was the model handed in loaded with a planned device map (`"auto"`, `"balanced"`, ...)
    bounded by `max_memory`? It then carries `hf_device_map`, which the pipeline follows, and
    refuses a `device` (pipelines/base.py:831-841). A plan without `max_memory` is DL021's,
    whose fix loads the model onto one device: the pipeline then needs its `device` too."""
    for value in ctx.assigned(model):
        if isinstance(value, ast.Call):
            device_map = keyword(value, "device_map")
            if (
                device_map is not None
                and isinstance(device_map.value, ast.Constant)
                and device_map.value.value in _PLANNED
                and keyword(value, "max_memory") is not None
            ):
                return True
            if value.args and _planned(value.args[0], ctx):  # PeftModel.from_pretrained(base, ...)
                return True
    return False


CHECK = HfPipelineWithoutDevice()
