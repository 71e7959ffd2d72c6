"""DL022: transformers' `pipeline(...)` without `device`, which is cuda:0."""

from __future__ import annotations

import ast

from devlint.checks.omitted_option import OmittedOptionCheck
from devlint.static.context import FileContext


class HfPipelineWithoutDevice(OmittedOptionCheck):
    code = "DL022"
    unless = ("device_map",)  # a device map decides (DL021 judges it)

    def excused(self, node: ast.Call, ctx: FileContext) -> bool:
        # Under an initialised process group the pipeline keeps the model's device
        # (pipelines/base.py:880-881), and the launcher chose that.
        return ctx.device_selected_before(node) and "init_process_group" in ctx.source.text


CHECK = HfPipelineWithoutDevice()
