"""DL008: GPU0 written out (`"cuda:0"`, `torch.device("cuda", 0)`, `.cuda(0)`, `.to(0)`), or
GPUs counted from 0 (`f"cuda:{i}" for i in range(n)`, `device_ids=[0, 1]`)."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.checks.device_value import DeviceValueCheck
from devlint.findings import Fix
from devlint.static.context import FileContext
from devlint.static import guards, values
from devlint.static.scope import _sets_visible_devices
from devlint.static.names import keyword
from devlint.static.values import Value, counts_from_zero, names_a_device
from devlint.static.suggest import INDEX_NAMES


class HardcodedGpu0(DeviceValueCheck):
    code = "DL008"

    def matches(self, value: Value) -> bool:
        return value.gpu0

    def message(self, text: str, literal: ast.AST, ctx: FileContext) -> str:
        counter = _counter(literal, ctx)
        if counter is not None:
            return f"`{text}` counts GPUs from 0 (`{counter}` starts at 0): GPU0 is always one of them, whatever GPUs the program was told to use"
        return f"`{text}` pins GPU0, whatever device the program was told to use"

    def fix(self, literal: ast.AST, expr: ast.expr, text: str, ctx: FileContext, used_here: bool) -> Fix:
        if _counter(literal, ctx) is not None:
            return ctx.display_only(
                self.code,
                "take the GPUs from what the program was given (a `--gpus 1,2` list: `gpus[i]`), "
                "or launch with CUDA_VISIBLE_DEVICES naming the GPUs to use",
            )
        return super().fix(literal, expr, text, ctx, used_here)

    def excused(self, literal: ast.AST, ctx: FileContext) -> bool:
        """After CUDA_VISIBLE_DEVICES was set, "cuda:0" is the first GPU it names; under
        `if local_rank == 0:`, a literal 0 is that rank's own GPU; under `if
        torch.cuda.device_count() == 1:`, it is the only GPU the user left visible."""
        if ctx.visible_devices_set_before(literal) or super().excused(literal, ctx):
            return True
        path = ctx.path_to(literal)
        if guards.only_with_one_gpu(path, ctx.scope):
            return True
        zero = isinstance(literal, ast.Constant) and literal.value in (0, "cuda:0")
        return zero and (guards.only_when(path, _index_is_zero, lambda test: False) or _called_only_on_rank_zero(ctx))

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        super().visit_Call(node, ctx)
        if ctx.qualname(node.func) in _lightning_trainers():
            self._gpu_count(node, ctx)

    def _gpu_count(self, node: ast.Call, ctx: FileContext) -> None:
        """`pl.Trainer(gpus=1)`, `Trainer(accelerator="gpu", devices=2)`: Lightning takes the
        first N visible GPUs (an int N is `range(N)`), GPU0 among them."""
        accelerator = keyword(node, "accelerator")
        if accelerator is not None and isinstance(accelerator.value, ast.Constant) and accelerator.value.value in ("cpu", "mps", "tpu"):
            return
        for name in ("gpus", "devices"):
            count = keyword(node, name)
            value = count.value if count is not None else None
            if not (isinstance(value, ast.Constant) and type(value.value) is int and value.value > 0):
                continue
            if ctx.visible_devices_set_before(node):
                return
            message = (
                f"`{name}={value.value}` gives Lightning a count of GPUs, which it takes from GPU 0 (`range({value.value})`): "
                f"GPU0 whatever GPU the program was told to use ({_LIGHTNING_COUNT})"
            )
            fix = ctx.display_only(
                self.code,
                f"pass the GPUs as a list the user chooses (`{name}=[gpu]` from a `--gpu` option), or launch with "
                "CUDA_VISIBLE_DEVICES naming them",
            )
            ctx.report(self.code, value, message, fix)
            return

    def visit_Assign(self, node: ast.Assign, ctx: FileContext) -> None:
        super().visit_Assign(node, ctx)
        if any(_sets_visible_devices(t) for t in node.targets):
            held = values.texts(node.value, ctx.scope)
            if held and all(values.spelled_out(t) and t.split(",")[0].strip() == "0" for t in held):
                message = (
                    f"`CUDA_VISIBLE_DEVICES` is set to `{ctx.text(node.value)}` in the code: the program runs on "
                    "GPU 0 whatever GPU it was told to use"
                )
                fix = ctx.display_only(
                    self.code,
                    "leave CUDA_VISIBLE_DEVICES to whoever launches the program (`CUDA_VISIBLE_DEVICES=1 python run.py`), "
                    "or set it from an option the user gives",
                )
                ctx.report(self.code, node.value, message, fix)

    def visit_With(self, node: ast.With, ctx: FileContext) -> None:
        for item in node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and ctx.qualname(expr.func) == "torch.cuda.device" and expr.args:
                self.judge(expr.args[0], ctx, used=True)


_LIGHTNING_COUNT = (
    "lightning fabric/utilities/device_parser.py `_normalize_parse_gpu_input_to_list`: an int N becomes "
    "`list(range(N))`, as in pytorch_lightning 1.x's device_parser"
)


@functools.cache
def _lightning_trainers() -> frozenset[str]:
    return frozenset(catalog.api("DL008", "lightning_trainers", []))


def _index_is_zero(test: ast.expr) -> bool:
    """`local_rank == 0`, `args.gpu == 0`: a GPU index (or rank) compared equal to 0."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    zero = any(isinstance(side, ast.Constant) and side.value == 0 for side in sides)
    named = [side.id if isinstance(side, ast.Name) else side.attr for side in sides if isinstance(side, (ast.Name, ast.Attribute))]
    return zero and any("rank" in name.lower() or names_a_device(name) or name in INDEX_NAMES for name in named)


def _called_only_on_rank_zero(ctx: FileContext) -> bool:
    """Is the enclosing module-level function called in its module, and only under `if rank
    == 0:` (vits' `evaluate`, called by the rank-0 process of an mp.spawn job)? Its literal 0
    is then that rank's own GPU, as under the guard itself; the job's start is DL007's."""
    function = ctx.scope.function
    if function is None or function.parent is None or function.parent.kind != "module":
        return False
    if "==" not in ctx.source.text:
        return False  # no `rank == 0` anywhere: no walk, and a part of a module (static/parts.py) reads no other part
    guarded = ctx.memo("DL008 calls under rank 0", lambda: _calls_under_rank_zero(ctx.tree))
    return guarded.get(function.node.name, False)


def _calls_under_rank_zero(tree: ast.Module) -> dict[str, bool]:
    """For each name called in a module-level function of the module: is every such call
    under a `rank == 0` guard?"""
    found: dict[str, bool] = {}
    for definition in tree.body:
        if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        stack = [(definition, (definition,))]  # each node with its path from the definition: one walk
        while stack:
            node, path = stack.pop()
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                under = guards.only_when(list(path), _index_is_zero, lambda test: False)
                found[node.func.id] = found.get(node.func.id, True) and under
            stack.extend((child, (*path, child)) for child in ast.iter_child_nodes(node))
    return found


def _counter(literal: ast.AST, ctx: FileContext) -> str | None:
    """The loop counter a device is built from, if it is one (`i` of `for i in range(n)`)."""
    for node in ast.walk(literal):
        if isinstance(node, ast.Name) and counts_from_zero(node, ctx.scope):
            return node.id
    return None


CHECK = HardcodedGpu0()
