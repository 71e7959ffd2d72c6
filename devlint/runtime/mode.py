"""The thorough mode's function mode: every torch call, seen with its raw arguments.

The cheap default mode wraps the calls that can choose a device where they live
(patches.py). A TorchFunctionMode sees more: factories bound before tracing began
(`from torch import zeros`), calls reached through the class (`torch.Tensor.to(x, ...)`),
and any call given a `device=` keyword, listed in the catalog or not. It costs every torch
call a trip through Python, so it runs only in `--thorough` sessions. Modes are per
thread: the hub pushes one in the thread that starts a thorough session and one in every
thread started while it runs.

The judges are placements.py's, looked up by the function torch hands the mode; a call
already judged by a cheap-mode wrapper reaches the mode while the hub is busy and is not
judged twice.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode, _pop_mode, _push_mode

from devlint.runtime import legacy, placements

# Under torch.compile the mode must stay out of the traced graph (torch < 2.3 has no such check).
_is_compiling = getattr(torch.compiler, "is_compiling", lambda: False)


def _call_name(func) -> str:
    """How the user wrote a call the catalog does not list: `torch.polar`, `.new_thing`."""
    name = getattr(func, "__name__", "call")
    return f".{name}" if getattr(func, "__qualname__", "").startswith(("TensorBase.", "Tensor.")) else f"torch.{name}"


class LeakMode(TorchFunctionMode):
    def __init__(self, hub) -> None:
        super().__init__()
        self.hub = hub
        self.live = True  # false once tracing stopped; a mode left in a running thread then passes through
        self.placements = {p.original: p for p in placements.placements()}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        try:
            found = self.placements.get(func)
        except TypeError:  # an unhashable callable: none of the placements
            found = None
        if not self.live or (found is None and kwargs.get("device") is None) or _is_compiling():
            return func(*args, **kwargs)
        if found is None:
            request = placements.device_keyword(_call_name(func), kwargs["device"])
        else:
            if found.takes_types:
                args = tuple(legacy.unwrap(a) for a in args)
                kwargs = {k: legacy.unwrap(v) for k, v in kwargs.items()}
            request = found.judge(args, kwargs)
        if request is None:  # not a GPU request
            return func(*args, **kwargs)
        same = args[0] if args and isinstance(args[0], torch.Tensor) else None
        return self.hub.intercept(request, lambda: func(*args, **kwargs), same)


def push(hub) -> LeakMode:
    mode = LeakMode(hub)
    _push_mode(mode)
    return mode


def remove(mode: LeakMode | None) -> None:
    """Take `mode` off this thread's mode stack, wherever it is, leaving the others in order.
    Always disables it: a mode that cannot be reached from here passes through from now on."""
    if mode is None:
        return
    mode.live = False
    stack = [_pop_mode() for _ in range(torch._C._len_torch_function_stack())]  # top first
    for other in reversed(stack):
        if other is not mode:
            _push_mode(other)
