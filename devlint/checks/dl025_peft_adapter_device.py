"""DL025: a peft adapter loaded without `torch_device`, which safetensors reads onto cuda:0."""

from __future__ import annotations

import ast

from devlint.checks.omitted_option import OmittedOptionCheck
from devlint.static import guards
from devlint.static.context import FileContext
from devlint.static.entry_points import Chosen, EntryPoint


class PeftAdapterDevice(OmittedOptionCheck):
    code = "DL025"

    def excused(self, node: ast.Call, ctx: FileContext) -> bool:
        # In a branch for an "mps" or "cpu" device CUDA is absent, and peft's own default,
        # infer_device(), is then not CUDA either (peft 0.21.2 utils/other.py infer_device).
        if guards.only_when(ctx.path_to(node), guards.says_off_cuda, guards.says_cuda):
            return True
        # `model.load_adapter(...)` of a transformers model places the adapter by the model's
        # own device (transformers 5.25.0 integrations/peft.py:292): only peft's models leak.
        func = node.func
        return ctx.qualname(func) is None and not _built_by_peft(func.value, ctx)

    def written(self, chosen: Chosen, entry: EntryPoint, ctx: FileContext) -> tuple[str, tuple]:
        # peft hands the value to safetensors' load_file and torch.device(): a string fits both.
        return f"{entry.option}={chosen.as_string()}", ()


def _built_by_peft(receiver: ast.expr, ctx: FileContext) -> bool:
    """Is `receiver` a name (or `self` attribute) assigned the result of a peft call
    (`PeftModel.from_pretrained(...)`, `get_peft_model(...)`)?"""
    return any(isinstance(v, ast.Call) and (ctx.qualname(v.func) or "").startswith("peft.") for v in ctx.assigned(receiver))


CHECK = PeftAdapterDevice()
