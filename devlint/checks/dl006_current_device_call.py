"""DL006: `torch.cuda` calls that act on the current device when given none."""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.static.engine import Callees, Check
from devlint.findings import Applicability
from devlint.static.context import FileContext
from devlint.static.names import argument, has_argument, keyword


class CurrentDeviceCall(Check):
    code = "DL006"

    def callees(self) -> Callees:
        """set_device, the catalog's calls (by their last name), and the stream methods and
        `record` that _stream_method reads."""
        return _callees()

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        if name == "torch.cuda.set_device":
            self._set_device(node, ctx)
            return
        entry = _calls().get(name)
        if entry is not None:
            param = entry.get("device_param")
            if param and has_argument(node, param, entry.get("device_position")):
                given = argument(node, param, entry.get("device_position"))
                if not (isinstance(given, ast.Constant) and given.value is None):
                    return
            if ctx.device_selected_before(node):
                return
            ctx.report(self.code, node, self._message(name, entry), self._fix(node, entry, ctx))
            return
        self._stream_method(node, ctx)

    def _message(self, name: str, entry: dict) -> str:
        short = name
        what = "creates a CUDA context" if entry.get("effect") == "context" else "allocates"
        how = "with no device" if entry.get("device_param") else ""
        return f"`{short}()` {how} acts on the current device and {what} there (GPU0 unless set_device chose another)".replace("  ", " ")

    def _fix(self, node: ast.Call, entry: dict, ctx: FileContext):
        param = entry.get("device_param")
        found = ctx.suggest_device(node)
        if not param:
            hint = f"`torch.cuda.set_device({found.expr if found else 'device'})` first"
            return ctx.display_only(self.code, f"call {hint}, or run it under `with torch.cuda.device(...)`")
        if found is None:
            positional = entry.get("device_position") == 0 and not node.args and not node.keywords
            if keyword(node, param) is None and (positional or not node.args):
                return ctx.thread_device(self.code, ctx.use_device_at(node, None if positional else param), f"pass the device: `{param}=device`")
            return ctx.display_only(self.code, f"pass the device: `{param}=device`")
        given = keyword(node, param)
        if given is not None:
            edit = ctx.replace(given.value, found.expr)
        elif entry.get("device_position") == 0 and not node.args:
            edit = ctx.add_keyword(node, found.expr) if not node.keywords else ctx.add_keyword(node, f"{param}={found.expr}")
        else:
            edit = ctx.add_keyword(node, f"{param}={found.expr}")
        grade = None if found.local else Applicability.UNSAFE
        return ctx.fix(self.code, f"Pass the device: `{param}={found.expr}`", edit, applicability=grade)

    def _set_device(self, node: ast.Call, ctx: FileContext) -> None:
        if not node.args:
            return
        if ctx.device(node.args[0]).gpu0:
            ctx.report(
                self.code,
                node,
                f"`torch.cuda.set_device({ctx.text(node.args[0])})` selects GPU0 and creates its CUDA context (CUDA 12+)",
                ctx.display_only(self.code, "select the GPU the program was given, e.g. `torch.cuda.set_device(local_rank)`"),
            )

    def _stream_method(self, node: ast.Call, ctx: FileContext) -> None:
        """`torch.cuda.current_stream().synchronize()`, `event.record()` on the current stream."""
        func = node.func
        if not isinstance(func, ast.Attribute):
            return
        receiver = func.value
        if func.attr in catalog.api(self.code, "stream_methods", []) and isinstance(receiver, ast.Call):
            inner = ctx.qualname(receiver.func)
            if inner in ("torch.cuda.current_stream", "torch.cuda.default_stream") and not has_argument(receiver, "device", 0):
                if ctx.device_selected_before(node):
                    return
                message = f"`{ctx.text(receiver)}.{func.attr}()` uses the stream of the current device (GPU0 unless set_device chose another)"
                found = ctx.suggest_device(node)
                if found is None:
                    fix = ctx.display_only(self.code, f"pass the device: `{inner}(device)`")
                else:
                    fix = ctx.fix(self.code, f"Pass the device: `{inner}({found.expr})`", ctx.add_keyword(receiver, found.expr), applicability=Applicability.UNSAFE)
                ctx.report(self.code, node, message, fix)
            return
        if func.attr == "record" and not node.args and not node.keywords and self._is_event(receiver, ctx):
            if ctx.device_selected_before(node):
                return
            found = ctx.suggest_device(node)
            message = f"`{ctx.text(node)}` records on the current stream of the current device (GPU0 unless set_device chose another)"
            if found is None:
                fix = ctx.display_only(self.code, "record on the target device's stream: `.record(torch.cuda.current_stream(device))`")
            else:
                torch, imports = ctx.torch_module()
                new = f"{torch}.cuda.current_stream({found.expr})"
                fix = ctx.fix(self.code, f"Record on `{new}`", ctx.add_keyword(node, new), *imports, applicability=Applicability.UNSAFE)
            ctx.report(self.code, node, message, fix)

    def _is_event(self, expr: ast.expr, ctx: FileContext) -> bool:
        if isinstance(expr, ast.Call):
            return ctx.qualname(expr.func) == "torch.cuda.Event"
        if isinstance(expr, ast.Name):
            found = ctx.scope.lookup_values(expr.id)
            return found is not None and all(self._is_event(v, ctx) for v in found[1]) and bool(found[1])
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            function = ctx.scope.function
            cls = function.enclosing_class if function else None
            values = cls.self_attrs.get(expr.attr, []) if cls else []
            return bool(values) and all(isinstance(v, ast.Call) and ctx.qualname(v.func) == "torch.cuda.Event" for _, v in values)
        return False


@functools.cache
def _callees() -> Callees:
    last = {"set_device", "record", *catalog.api(CurrentDeviceCall.code, "stream_methods", [])}
    return Callees(frozenset(last | {name.rsplit(".", 1)[-1] for name in _calls()}), names=True)


@functools.cache
def _calls() -> dict[str, dict]:
    """The catalog's current-device calls by qualified name (read for every call: built once)."""
    return {c["name"]: c for c in catalog.api(CurrentDeviceCall.code, "calls", [])}


CHECK = CurrentDeviceCall()
