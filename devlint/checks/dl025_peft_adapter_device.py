"""DL025: a peft adapter loaded without `torch_device`, which safetensors reads onto cuda:0."""

from __future__ import annotations

import ast

from devlint.checks.omitted_option import OmittedOptionCheck
from devlint.static.context import FileContext
from devlint.static.entry_points import Chosen, EntryPoint


class PeftAdapterDevice(OmittedOptionCheck):
    code = "DL025"

    def excused(self, node: ast.Call, ctx: FileContext) -> bool:
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
    if isinstance(receiver, ast.Name):
        found = ctx.scope.lookup_values(receiver.id)
        values = found[1] if found is not None else []
    elif isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name) and receiver.value.id == "self":
        function = ctx.scope.function
        cls = function.enclosing_class if function is not None else None
        values = [value for _, value in cls.self_attrs.get(receiver.attr, [])] if cls is not None else []
    else:
        return False
    return any(isinstance(v, ast.Call) and (ctx.qualname(v.func) or "").startswith("peft.") for v in values)


CHECK = PeftAdapterDevice()
