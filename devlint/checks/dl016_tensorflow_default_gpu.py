"""DL016: TensorFlow started next to torch takes every visible GPU and runs on /GPU:0."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.static import names, runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check


@functools.lru_cache(maxsize=1)
def _starters() -> frozenset[str]:
    return frozenset(catalog.api("DL016", "starters", []))


@functools.lru_cache(maxsize=1)
def _sessions() -> frozenset[str]:
    return frozenset(catalog.api("DL016", "sessions", []))


@functools.lru_cache(maxsize=1)
def _graph_mode() -> frozenset[str]:
    return frozenset(catalog.api("DL016", "graph_mode", []))


class TensorflowDefaultGpu(Check):
    code = "DL016"

    def wanted(self, ctx: FileContext) -> bool:
        return runtimes.mentions(ctx, "tensorflow", "keras")

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        if name not in _sessions() and (name not in _starters() or self._graph_mode(ctx)):
            return  # in a graph (TF1-style) program, ops only build the graph: its session starts the GPUs
        if runtimes.in_tensorflow_class(ctx) or self._visible_devices_set(ctx) or runtimes.devices_masked(ctx):
            return
        if not runtimes.first_in_scope(ctx, self.code):
            return
        message = (
            f"`{ctx.text(node.func)}(...)` starts TensorFlow on every visible GPU (it maps nearly all their memory) "
            "and runs its ops on /GPU:0, whatever device the program was told to use"
        )
        ctx.report(self.code, node, message, ctx.display_only(self.code, self._advice(node, name in _sessions(), ctx)))

    def _graph_mode(self, ctx: FileContext) -> bool:
        """Does this module build a TensorFlow graph to run in a session (`tf.Session`,
        `tf.placeholder`, `disable_eager_execution()`)? Its ops then start nothing."""

        def find() -> bool:
            tails = {name.rsplit(".", 1)[-1] for name in _graph_mode()}
            return any(
                isinstance(node, ast.Attribute) and node.attr in tails and names.qualname(node, ctx.module_scope) in _graph_mode()
                for node in ast.walk(ctx.tree)
            )

        return ctx.memo("DL016: graph mode", find)

    def _visible_devices_set(self, ctx: FileContext) -> bool:
        """Does this module call `tf.config.set_visible_devices`, or give a session config its
        `gpu_options.visible_device_list`, anywhere? TensorFlow then sees only the GPUs kept
        (names matched without their package: the call may sit in any scope)."""

        def find() -> bool:
            tails = tuple("." + s.split(".", 1)[1] for s in catalog.api(self.code, "selectors", []))
            for node in ast.walk(ctx.tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "set_visible_devices":
                    parts = names.dotted(node.func)
                    if parts and ".".join(["", *parts[1:]]) in tails:
                        return True
                if isinstance(node, ast.keyword) and node.arg == "visible_device_list":
                    return True
                if isinstance(node, ast.Attribute) and node.attr == "visible_device_list" and isinstance(node.ctx, ast.Store):
                    return True
            return False

        return ctx.memo("DL016: set_visible_devices", find)

    def _advice(self, node: ast.Call, session: bool, ctx: FileContext) -> str:
        index = runtimes.gpu_index(ctx, node)
        i = index.expr if index is not None and index.simple else "index"
        if session:
            return (
                f"give the session's config the chosen GPU: `config.gpu_options.visible_device_list = str({i})` "
                "(`tf.ConfigProto`), or launch with CUDA_VISIBLE_DEVICES"
            )
        return (
            "keep only the chosen GPU before TensorFlow's first op, once at program start: "
            f'`tf.config.set_visible_devices(tf.config.list_physical_devices("GPU")[{i}:{i} + 1], "GPU")` '
            "(or launch with CUDA_VISIBLE_DEVICES); `with tf.device(...)` moves the ops but TensorFlow still takes every GPU"
        )


CHECK = TensorflowDefaultGpu()
