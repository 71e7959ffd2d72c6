"""A request: what one intercepted call asked for, judged before the call runs.

Every hook (the function mode, the process-wide wrappers) turns the arguments it sees
into at most one Request: the GPU the call will land on, the rule code that names the
mistake, and the wording of the message and the fix. Judging a request against the
allowed devices is then the same for every hook.
"""

from __future__ import annotations

from typing import NamedTuple

from devlint.runtime.devices import Target, label


class Request(NamedTuple):
    """A named tuple: one is built per judged call, where a frozen dataclass costs microseconds."""

    index: int  # the GPU, in the program's numbering
    code: str
    message: str
    fix: str  # what to change; "{device}" stands for an expression holding the allowed device
    kind: str = "allocation"  # "allocation": places data there; "context": only uses the device
    via_current: bool = False  # the index came from the calling thread's current device
    always: bool = False  # a leak whatever the allowed devices are (e.g. a late CUDA_VISIBLE_DEVICES)
    from_loader: bool = False  # made by torch.load's restore hook: judged even while torch.load runs
    initialises: bool = False  # the call initialises CUDA in C++, which torch.cuda.is_initialized() does not show


def placement(target: Target, call: str, unindexed_code: str, fix: str, kind: str = "allocation") -> Request:
    """A request for `target` made by `call`: a code for how the index was chosen.

    Through the current device: the caller's own code (DL001 for `.cuda()`, DL002 for a
    `"cuda"` string, ...); an explicit GPU0: DL008; any other explicit index: DL103.
    """
    where = label(target.index)
    if target.via_current:
        code = unindexed_code
        message = f"{call} uses the current device, {where}"
    elif target.index == 0:
        code = "DL008"
        message = f"{call} asks for {where} explicitly"
        fix = "use {device} instead of GPU0"
    else:
        code = "DL103"
        message = f"{call} asks for {where}, which this run may not use"
        fix = "use {device}"
    return Request(target.index, code, message, fix, kind, target.via_current)
