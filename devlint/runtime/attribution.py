"""Attribution: which line of the user's code a request comes from.

The site of a leak is the innermost frame that is not library code (torch, devlint,
the standard library, anything under site-/dist-packages): the line a person can
change. The library frames inside it stay visible as the origin and in a short stack.
Locating the site walks the stack; the hub does it once per call site (its memo is
keyed by `site_key`, which reads only the frames' positions), together with the rest
(origin, stack, a callee that left its `device` at the default, locals holding a device),
which reads frame locals.
"""

from __future__ import annotations

import inspect
import os
import sysconfig
from dataclasses import dataclass
from types import FrameType

import torch

from devlint import catalog
from devlint.runtime.devices import Target, target
from devlint.runtime.summary import short_path

STACK_DEPTH = 8
_CALLER_DEPTH = 3  # how far above the site to look for a user function that left `device` out

_DEVLINT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_STDLIB_DIRS = tuple(
    {os.path.abspath(p) + os.sep for p in (sysconfig.get_paths()["stdlib"], os.path.dirname(os.__file__))}
)
_PACKAGE_DIRS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


@dataclass(frozen=True)
class Frame:
    filename: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line} in {self.function}"

    @property
    def at(self) -> str:
        """`path:line`, the path relative to the working directory when under it."""
        return f"{short_path(self.filename)}:{self.line}"


@dataclass(frozen=True)
class Callee:
    """A function on the way to the leak that was called without its `device`."""

    name: str  # as called: `GFPGANer()`, `load_model()`
    default: str  # the default it fell back to, as written
    call: Frame  # the line that called it
    library: bool  # the callee is library code (then the leak is DL012 at the caller)
    also: tuple[str, ...] = ()  # other parameters that select the device (catalog)


@dataclass(frozen=True)
class Analysis:
    origin: Frame | None
    stack: tuple[str, ...]
    callee: Callee | None
    candidates: tuple[tuple[str, Target], ...]  # expressions in the site's frame that hold a device


def absolute(filename: str) -> str:
    """A code object's filename as reports name it: absolute, unless it is `<string>`-like."""
    return filename if filename.startswith("<") else os.path.abspath(filename)


def frame_of(frame: FrameType) -> Frame:
    code = frame.f_code
    return Frame(absolute(code.co_filename), frame.f_lineno, getattr(code, "co_qualname", code.co_name))


_KINDS: dict[str, str] = {}  # filename -> kind: the few files a program runs, each classified once


def _kind(filename: str) -> str:
    """"devlint", "torch", "library" (stdlib, installed packages) or "user"."""
    kind = _KINDS.get(filename)
    if kind is None:
        kind = _KINDS[filename] = _classify(filename)
    return kind


def _classify(filename: str) -> str:
    if filename.startswith("<"):
        return "library" if filename.startswith("<frozen") else "user"
    path = os.path.abspath(filename)
    if path.startswith(_DEVLINT_DIR + os.sep):
        return "devlint"
    if path.startswith(_TORCH_DIR + os.sep):
        return "torch"
    if any(part in path for part in _PACKAGE_DIRS) or path.startswith(_STDLIB_DIRS):
        return "library"
    return "user"


def kind(filename: str) -> str:
    """"devlint", "torch", "library" or "user": whose code a file is."""
    return _kind(filename)


def site_key(frame: FrameType | None) -> tuple:
    """Where a request comes from, cheaply: the position (file, function, instruction) of
    each frame from `frame` out to the site, devlint's own left out. Requests with the same
    key come from the same line through the same library calls. It reads no line numbers
    and keeps no frame, and no object's identity is part of it."""
    key = []
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        kind = _KINDS.get(filename) or _kind(filename)
        if kind != "devlint":
            key.append((filename, code.co_firstlineno, code.co_name, frame.f_lasti))
            if kind == "user":
                break
        frame = frame.f_back
    return tuple(key)


Position = tuple  # (code object, instruction offset): a frame's place, without the frame


def chain(frame: FrameType | None, submitter: tuple = ()) -> tuple[Position, ...]:
    """Where work handed to another thread comes from, cheaply: the positions from `frame`
    out to the first user frame, devlint's own left out; when no user frame is on this
    thread's stack, the chain of whoever submitted this thread's work follows. Keeps code
    objects only, never a frame (its locals would live on)."""
    found = []
    while frame is not None:
        code = frame.f_code
        kind = _KINDS.get(code.co_filename) or _kind(code.co_filename)
        if kind != "devlint":
            found.append((code, frame.f_lasti))
            if kind == "user":
                return tuple(found)
        frame = frame.f_back
    return tuple(found) + submitter


def position_frame(position: Position) -> Frame:
    code, offset = position
    line = next((line for start, end, line in code.co_lines() if start <= offset < end and line is not None), code.co_firstlineno)
    return Frame(absolute(code.co_filename), line, getattr(code, "co_qualname", code.co_name))


def chain_site(positions: tuple[Position, ...]) -> tuple[Frame | None, list[Frame]]:
    """The user frame of a chain and the library frames inside it, innermost first."""
    inner = []
    for position in positions:
        frame = position_frame(position)
        if _kind(frame.filename) == "user":
            return frame, inner
        inner.append(frame)
    return None, inner


def package_of(filename: str) -> str | None:
    """The top-level package an installed file belongs to (`transformers` for
    .../site-packages/transformers/modeling_utils.py), or None for other files."""
    path = os.path.abspath(filename)
    for marker in _PACKAGE_DIRS:
        at = path.rfind(marker)
        if at >= 0:
            first = path[at + len(marker) :].split(os.sep, 1)[0]
            return first[:-3] if first.endswith(".py") else first
    return "torch" if path.startswith(_TORCH_DIR + os.sep) else None


def pooled(frame: FrameType | None, submitter: tuple) -> tuple[Frame, Analysis, Frame | None] | None:
    """For a request in a worker thread with no user frame on its stack: the user line that
    handed the work over, an analysis whose origin and stack are the worker's library frames
    and the handing-over chain's, and the library function that line called (the entry
    point). None when the worker's own stack reaches user code."""
    worker = []
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind == "user":
            return None
        if kind != "devlint" and not frame.f_code.co_filename.startswith(_STDLIB_DIRS):  # thread and pool machinery
            worker.append(frame_of(frame))
        frame = frame.f_back
    user, handing = chain_site(submitter)
    if user is None:
        return None
    library = worker + [f for f in handing if not f.filename.startswith(_STDLIB_DIRS)]
    origin = next((f for f in library if _kind(f.filename) == "library"), library[-1] if library else None)
    stack = tuple(str(f) for f in [*library, user][:STACK_DEPTH])
    entry = library[-1] if library else None
    return user, Analysis(origin, stack, None, ()), entry


def locate(frame: FrameType | None) -> tuple[FrameType | None, list[FrameType]]:
    """The site (innermost user frame) at or above `frame`, and the library frames inside
    it, innermost first, devlint's own left out. With no user frame at all (a library
    thread), the innermost library frame stands in for the site."""
    inner: list[FrameType] = []
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind == "user":
            return frame, inner
        if kind != "devlint":
            inner.append(frame)
        frame = frame.f_back
    return (inner[0], []) if inner else (None, [])


def analyze(site: FrameType, inner: list[FrameType], index: int) -> Analysis:
    return Analysis(
        origin=_origin(inner),
        stack=_stack(site, inner),
        callee=_library_callee(site, inner, index) or _user_callee(site, index),
        candidates=tuple(_candidates(site)),
    )


def _origin(inner: list[FrameType]) -> Frame | None:
    """The innermost third-party frame (the library that did it); failing that, the
    outermost library frame (the torch API the user called, not its internals)."""
    for frame in inner:
        if _kind(frame.f_code.co_filename) == "library":
            return frame_of(frame)
    return frame_of(inner[-1]) if inner else None


def _stack(site: FrameType, inner: list[FrameType]) -> tuple[str, ...]:
    """The library frames inside the site, the site, and its callers up to the program's
    entry (devlint's runner and runpy are not the program's)."""
    frames = list(inner)
    frame = site
    while frame is not None and len(frames) < STACK_DEPTH and _kind(frame.f_code.co_filename) != "devlint":
        if "runpy" not in frame.f_code.co_filename:
            frames.append(frame)
        frame = frame.f_back
    return tuple(str(frame_of(f)) for f in frames)


def _function(frame: FrameType):
    """The function object a frame runs: a method found through `self`/`cls`, a module
    function, or a local function of the caller."""
    code = frame.f_code
    first = code.co_varnames[0] if code.co_argcount else None
    owner = frame.f_locals.get(first) if first in ("self", "cls") else None
    candidates = []
    if owner is not None:
        candidates = [vars(k).get(code.co_name) for k in (owner if isinstance(owner, type) else type(owner)).__mro__]
    candidates.append(frame.f_globals.get(code.co_name))
    if frame.f_back is not None:
        candidates += list(frame.f_back.f_locals.values())
    for candidate in candidates:
        candidate = getattr(candidate, "__func__", candidate)  # staticmethod, classmethod
        if inspect.isfunction(candidate) and inspect.unwrap(candidate).__code__ is code:
            return candidate
    return None


def _left_default(frame: FrameType, index: int) -> str | None:
    """The default of the frame function's `device` parameter when the call left it out
    (the value is still the default, or a None default was turned into a CUDA device
    that resolves to `index`); None otherwise."""
    code = frame.f_code
    parameters = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    if "device" not in parameters:
        return None
    value = frame.f_locals.get("device")
    function = _function(frame)
    try:
        default = inspect.signature(function).parameters["device"].default if function else inspect.Parameter.empty
    except (TypeError, ValueError, KeyError):
        default = inspect.Parameter.empty
    if default is inspect.Parameter.empty:
        return None
    if value is default or (isinstance(value, str) and value == default):
        return repr(default)
    landed = target(value)
    if default is None and landed is not None and landed.via_current and landed.index == index:
        return "None"
    return None


def _display_name(frame: FrameType) -> str:
    code = frame.f_code
    qualname = getattr(code, "co_qualname", code.co_name)
    if code.co_name == "__init__" and "." in qualname:
        qualname = qualname.rsplit(".", 1)[0]
    return qualname.replace(".<locals>", "") + "()"


def _catalog_entry(frame: FrameType) -> dict | None:
    """The DL012 `libraries` entry naming this frame's function or class, if any."""
    code = frame.f_code
    qualname = getattr(code, "co_qualname", code.co_name)
    if code.co_name == "__init__":
        qualname = qualname.rsplit(".", 1)[0]
    full = f"{frame.f_globals.get('__name__', '')}.{qualname}"
    return next((e for e in catalog.api("DL012", "libraries", []) if full in e["names"]), None)


def _library_callee(site: FrameType, inner: list[FrameType], index: int) -> Callee | None:
    """The outermost library function that left `device` at its default: the call the user made."""
    for frame in reversed(inner):
        if _kind(frame.f_code.co_filename) == "torch":
            continue
        default = _left_default(frame, index)
        if default is not None:
            entry = _catalog_entry(frame)
            if entry is not None:
                default = entry["default"]
            also = tuple(entry.get("also", ())) if entry else ()
            return Callee(_display_name(frame), default, frame_of(site), True, also)
    return None


def _user_callee(site: FrameType, index: int) -> Callee | None:
    """A user function at or just above the site that was called without its `device`."""
    frame = site
    for _ in range(_CALLER_DEPTH):
        if frame is None or frame.f_back is None or _kind(frame.f_code.co_filename) != "user":
            return None
        default = _left_default(frame, index)
        if default is not None:
            return Callee(_display_name(frame), default, frame_of(frame.f_back), False)
        frame = frame.f_back
    return None


def _device_value(name: str, value) -> tuple[int, str, Target] | None:
    """(preference, expression, device) for a value that holds an explicit CUDA device.

    Preference: a device or string whose name says "device", another device or string,
    an attribute of `self`, a tensor's `.device`, an integer named like a GPU index.
    """
    if isinstance(value, torch.Tensor):
        if value.device.type == "cuda":
            return 3, f"{name}.device", Target(value.device.index, False)
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if value >= 0 and any(word in name.lower() for word in ("rank", "gpu", "device")):
            return 4, f'f"cuda:{{{name}}}"', Target(value, False)
        return None
    if isinstance(value, (str, torch.device)):
        found = target(value)
        if found is not None and not found.via_current:
            if name.startswith("self."):
                return 2, name, found
            return (0 if "device" in name.lower() else 1), name, found
    return None


def _candidates(frame: FrameType) -> list[tuple[str, Target]]:
    """Locals (and device attributes of `self`) that hold an explicit CUDA device, best first."""
    namespace = dict(frame.f_locals)
    found = [_device_value(name, value) for name, value in namespace.items()]
    owner = namespace.get("self")
    if hasattr(owner, "__dict__"):
        found += [_device_value(f"self.{name}", value) for name, value in vars(owner).items() if isinstance(value, (str, torch.device))]
    return [(expr, device) for _, expr, device in sorted((hit for hit in found if hit), key=lambda hit: hit[:2])]
