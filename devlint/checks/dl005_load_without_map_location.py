"""DL005: a checkpoint loaded without `map_location` goes back to the GPU it was saved from."""

from __future__ import annotations

import ast

from devlint.static.engine import Check
from devlint.findings import Applicability
from devlint.static import placement
from devlint.static.context import FileContext
from devlint.static.names import argument, keyword, passes_unknown_args


class LoadWithoutMapLocation(Check):
    code = "DL005"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        if name not in placement.loaders():
            return
        location = argument(node, "map_location", placement.loaders()[name])
        if location is not None and not (isinstance(location, ast.Constant) and location.value is None):
            return
        if location is None and passes_unknown_args(node):
            return
        short = name.rsplit(".", 1)[-1] if name.startswith("torch.hub") else name
        message = f"`{short}` without `map_location` puts each tensor back on the device it was saved from (usually cuda:0)"
        ctx.report(self.code, node, message, self._fix(node, ctx))

    def _fix(self, node: ast.Call, ctx: FileContext):
        found = ctx.suggest_device(node)
        value = found.expr if found else '"cpu"'
        explicit_none = keyword(node, "map_location")
        if explicit_none is not None:
            edit = ctx.replace(explicit_none.value, value)
        elif len(node.args) > 1:
            return ctx.display_only(self.code, f"pass `map_location={value}`")
        else:
            edit = ctx.add_keyword(node, f"map_location={value}")
        where = f"onto `{found.expr}`" if found else "onto the CPU (move to the device afterwards)"
        return ctx.fix(self.code, f"Load {where}: `map_location={value}`", edit, applicability=Applicability.UNSAFE)


CHECK = LoadWithoutMapLocation()
