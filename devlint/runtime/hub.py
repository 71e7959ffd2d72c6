"""The process-wide half of the tracer: hooks installed once, shared by every session.

Hooks are process-wide (patched functions) or per thread (the thorough mode's function
mode), but sessions nest: `devlint run` around a program that itself calls
`devlint.trace()`, a pytest session around a test. The hub installs the hooks when the
first session starts and removes them when the last one stops, and keeps a function mode
pushed while any thorough session runs. Every hook hands its request to `Hub.intercept`,
which judges it for each session before the call runs, records it where it leaks (or
raises, in strict mode), runs the call, then asks the driver whether a context appeared
and counts the bytes the call left on the GPU.

Where a request comes from is worked out once per call site and request (the memo): a
loop that asks for a device 10,000 times from one line walks the stack to its site once.
Work handed to another thread (a `Thread` started, a task submitted to a thread pool)
carries the positions of the line that handed it over (attribution.chain), so a request in
a worker with no user frame on its stack is blamed on that line.

The invariant (`account`): a session never ends clean while the driver, NVML or the
allocator shows a context or memory on a GPU it may not use; what no hook explained is a
DL101 at the best line known, never at no line.
"""

from __future__ import annotations

import contextlib
import linecache
import sys
import threading
from dataclasses import dataclass, field

import torch

from devlint.runtime import attribution, entry_points, oracle
from devlint.runtime.devices import Allowed, current_index, label
from devlint.runtime.history import AllocatorHistory
from devlint.runtime.oracle import ContextOracle
from devlint.runtime.report import DeviceLeakError, Leak
from devlint.runtime.requests import Request

UNKNOWN_SITE = attribution.Frame("<unknown>", 0, "")


class _ThreadState(threading.local):
    busy = False  # inside a judged call: the calls it makes are its own business
    map_locations: tuple = ()  # the `map_location` of each torch.load running in this thread
    restored = 0  # location tags the restore hook judged in this thread (torch.load's internals)
    submitter: tuple = ()  # attribution.chain of the line that handed this thread its current work


@dataclass
class _Site:
    """What the memo knows of one call site and request: where it is and, once it has
    leaked, how to report it (the leak each set of allowed devices records there)."""

    request: Request
    frame: attribution.Frame
    analysis: attribution.Analysis | None = None
    classified: tuple[str, str, str] | None = None  # code, message, fix
    entry: attribution.Frame | None = None  # the library function the user's line called (entry_points.py)
    leaks: dict[Allowed, Leak] = field(default_factory=dict)


class Hub:
    def __init__(self) -> None:
        self.sessions: tuple = ()  # replaced, never mutated: hooks read it without the lock
        self.thread = _ThreadState()
        self.oracle = ContextOracle()
        self.history = AllocatorHistory()  # on once a context nobody asked for appeared on a disallowed GPU
        self.selected: dict[int, int] = {}  # thread ident -> the device that thread selected
        self.sites: dict[str, attribution.Frame] = {}  # "cuda-init", "process-group": where they happened
        self._memo: dict[tuple, _Site] = {}  # (site key, request, thread never selected) -> the site
        self._lock = threading.RLock()
        self._patches: list = []
        self._mode = None  # the function mode, pushed while a thorough session runs
        self.preexisting: frozenset[int] = frozenset()  # contexts from before tracing: not its business
        self.last_check: tuple = ()  # attribution.chain of the last check that found no new context
        self.entry: attribution.Frame | None = None  # where the traced program starts (DL101's last resort)

    @property
    def thorough(self) -> bool:
        return self._mode is not None

    # -- sessions ---------------------------------------------------------------------

    def attach(self, session) -> None:
        from devlint.runtime import mode

        with self._lock:
            if not self.sessions:
                self._install()
            try:
                if session.thorough and self._mode is None:
                    self._mode = mode.push(self)
            except BaseException:
                if not self.sessions:
                    self._uninstall()
                raise
            self.sessions = self.sessions + (session,)

    def detach(self, session) -> None:
        from devlint.runtime import mode

        with self._lock:
            self.final_poll()
            self._recorded_allocations(session)
            self.sessions = tuple(s for s in self.sessions if s is not session)
            try:
                if self._mode is not None and not any(s.thorough for s in self.sessions):
                    mode.remove(self._mode)
                    self._mode = None
            finally:
                if not self.sessions:
                    self._uninstall()

    def _install(self) -> None:
        from devlint.runtime import patches

        self.oracle = ContextOracle()
        self.preexisting = self.oracle.poll()  # contexts from before the trace are not its business
        self.last_check = ()
        self.history = AllocatorHistory()
        current = current_index()  # a device selected before tracing started counts as selected
        self.selected = {threading.get_ident(): current} if current != 0 else {}
        self.sites = {}
        self._memo = {}
        self._patches = patches.install(self)

    def _uninstall(self) -> None:
        from devlint.runtime import mode, patches

        try:
            mode.remove(self._mode)
        finally:
            self._mode = None
            patches.uninstall(self._patches)
            self._patches = []
            self._memo = {}
            self.history.stop()

    @contextlib.contextmanager
    def thread_scope(self):
        """The function mode is per thread: enter it for the life of a new thread."""
        from devlint.runtime import mode

        pushed = mode.push(self) if self.thorough else None
        try:
            yield
        finally:
            if pushed is not None:
                mode.remove(pushed)

    # -- judging ----------------------------------------------------------------------

    def intercept(self, request: Request | None, call, same=None):
        """Judge `request`, run `call()`, account for what it did. `same`: an input the
        call may return unchanged (then it allocated nothing)."""
        sessions = self.sessions
        state = self.thread
        if request is None or not sessions or state.busy:
            return call()
        caller = sys._getframe(1)
        if state.map_locations and not request.from_loader and _called_from_torch(caller):
            return call()  # torch.load's own allocations: its restore hook judged the saved locations
        leaking = counting = ()
        for session in sessions:
            if request.always or request.index not in session.allowed.indices:
                leaking += (session,)
            elif session.track_exercised:
                counting += (session,)
        site = self._site(request, caller, bool(leaking)) if leaking or counting else None
        if site is not None:
            for session in counting:
                session.recorder.exercise(site.frame.filename, site.frame.line)
        appeared = self.oracle.poll()
        if appeared:
            site = site or self._site(request, caller, False)
            self._unexplained(appeared, site.frame, f"before this call (since the previous intercepted call), which asked for {label(request.index)}")
        records = self._record(site, leaking) if leaking else ()
        result = None
        state.busy = True
        try:
            result = call()
            if request.initialises:
                oracle.driver_started()  # the driver may be asked from now on
            return result
        finally:
            state.busy = False
            appeared = self.oracle.poll()
            if self.oracle.unseen and not appeared - {request.index}:
                self.last_check = attribution.chain(caller, state.submitter)  # nothing unexplained so far
            if records:
                created = request.index in appeared
                nbytes = 0 if result is same else _nbytes(result, request.index)
                for session, record in records:
                    session.recorder.update(record, nbytes, created)
                appeared = appeared - {request.index}
            if appeared:
                site = site or self._site(request, caller, False)
                self._unexplained(appeared, site.frame, f"during this call, which asked for {label(request.index)}")

    def handed_over(self, frame) -> tuple:
        """Work is handed to another thread at `frame` (a Thread started, a task submitted):
        its chain, for the worker to be blamed on. Also a check: a context that appeared
        before this point is reported here."""
        state = self.thread
        handed = attribution.chain(frame, state.submitter)
        if self.sessions and not state.busy:
            appeared = self.oracle.poll()
            if appeared:
                self._unexplained(appeared, self._chain_frame(handed), "before this line handed work to another thread")
            elif self.oracle.unseen:
                self.last_check = handed
        return handed

    def work_for(self, handed: tuple) -> tuple:
        """This thread now works on behalf of the line that handed it the work; returns what
        `done_working` restores. A pair of calls, not a context manager: it runs around every
        task a pool runs, so it does no more than swap one attribute (the chain is hashed only
        when a request in the worker is judged)."""
        state = self.thread
        saved = state.submitter
        state.submitter = handed
        return saved

    def done_working(self, saved: tuple) -> None:
        self.thread.submitter = saved

    @staticmethod
    def _chain_frame(handed: tuple) -> attribution.Frame | None:
        user, inner = attribution.chain_site(handed)
        return user or (inner[0] if inner else None)

    def note_site(self, name: str) -> None:
        """Remember where something first happened (CUDA initialised, a process group made)."""
        if name not in self.sites:
            site, _ = attribution.locate(sys._getframe(1))
            self.sites[name] = attribution.frame_of(site) if site is not None else UNKNOWN_SITE

    def select(self, index: int) -> None:
        self.selected[threading.get_ident()] = index

    def final_poll(self) -> None:
        """Contexts that appeared after the last intercepted call, reported at no site."""
        appeared = self.oracle.poll()
        if appeared:
            site, when = self._best_line()
            self._unexplained(appeared, site, when)

    def _best_line(self) -> tuple[attribution.Frame | None, str]:
        """Where a context nobody asked for appeared, as near as devlint can tell: after
        the last check that found none, else somewhere after the program's start."""
        checked = self._chain_frame(self.last_check) if self.last_check else None
        if checked is not None:
            return checked, "after this line (the last call devlint checked; the driver showed no new context then)"
        return self.entry, "while the program ran (no call devlint checks ran before it; rerun with --thorough to check every torch call)"

    def account(self, session, gpus) -> None:
        """The invariant: a session whose disallowed GPUs hold a context or memory of this
        process (driver, NVML, allocator) has a leak there. What no hook explained becomes a
        DL101 at the best line known. Runs when the session reports."""
        leaked = {leak.device for leak in session.recorder.leaks()}
        unexplained = set()
        for gpu in gpus:
            index = int(gpu.device.rpartition(":")[2])
            if gpu.allowed or gpu.device in leaked or index in self.preexisting:
                continue
            if gpu.context or gpu.memory or gpu.reserved:
                unexplained.add(index)
        if unexplained:
            site, when = self._best_line()
            self._unexplained(unexplained, site, f"{when}; the driver or NVML showed it when the run ended", (session,))

    def _site(self, request: Request, caller, leaking: bool) -> _Site:
        """The memo: where `request`, made from `caller`, comes from, worked out once per
        call site (the frames from the caller out to the user's line) and request. A
        leaking site is also analysed once: its origin, stack, callee and suggestion."""
        never_selected = request.via_current and self._thread_never_selected(request.index)
        state = self.thread
        key = (attribution.site_key(caller), request, never_selected, state.submitter)
        site = self._memo.get(key)
        if site is not None and (site.classified is not None or not leaking):
            return site
        pooled = attribution.pooled(caller, state.submitter) if state.submitter else None
        if pooled is not None:  # a worker with no user frame: blamed on the line that handed it the work
            frame, analysis, entry = pooled
            site = site or _Site(request, frame, entry=entry)
            if leaking:
                site.analysis, site.classified = analysis, self._classify(request, analysis, never_selected)
            self._memo[key] = site
            return site
        site_frame, inner = attribution.locate(caller)
        if site is None:
            site = _Site(request, attribution.frame_of(site_frame) if site_frame is not None else UNKNOWN_SITE)
            site.entry = attribution.frame_of(inner[-1]) if inner and site_frame is not None else None
        if leaking:
            analysis = attribution.analyze(site_frame, inner, request.index) if site_frame is not None else None
            site.analysis, site.classified = analysis, self._classify(request, analysis, never_selected)
        self._memo[key] = site
        return site

    def _record(self, site: _Site, sessions) -> list:
        records = []
        for session in sessions:
            leak = site.leaks.get(session.allowed)
            if leak is None:
                leak = site.leaks[session.allowed] = self._leak(site, session.allowed)
            records.append((session, session.recorder.add(leak)))
        for session, record in records:
            if session.strict:
                raise DeviceLeakError.for_leak(record, session.allowed.labels)
        return records

    def _leak(self, site: _Site, allowed: Allowed) -> Leak:
        """The record a leak at `site` starts from, for a session allowing `allowed`."""
        code, message, fix = site.classified
        analysis, frame = site.analysis, site.frame
        option = entry_points.option_for(site.entry, allowed.first)
        return Leak(
            code=code,
            message=message,
            filename=frame.filename,
            line=frame.line,
            function=frame.function,
            device=label(site.request.index),
            kind=site.request.kind,
            suggestion=option.suggestion() if option else _suggest(fix, analysis, allowed),
            option=option.to_json() if option else None,
            origin=str(analysis.origin) if analysis and analysis.origin else None,
            stack=analysis.stack if analysis else (),
            source_line=linecache.getline(frame.filename, frame.line).strip() or None,
        )

    def _classify(self, request: Request, analysis, never_selected: bool) -> tuple[str, str, str]:
        """The code, message and fix of a leak: the request's own, unless a library was
        called without its `device` (DL012) or a thread never selected one (DL102)."""
        callee = analysis.callee if analysis else None
        if callee is not None and callee.library:
            also = "".join(f" (or `{name}=`)" for name in callee.also)
            return (
                "DL012",
                f"`{callee.name}` was called without `device` (its default: {callee.default}); inside it, {request.message}",
                f"pass `device={{device}}`{also} to `{callee.name}`",
            )
        if never_selected:
            thread = threading.current_thread().name
            return (
                "DL102",
                f"{request.message} in thread {thread!r}, which never selected a device (set_device in another thread does not carry over)",
                "pass the device explicitly, or call `torch.cuda.set_device({device})` at the start of the thread",
            )
        if callee is not None:
            return request.code, request.message, f"`{callee.name}` called at {callee.call.at} left `device` at its default {callee.default}: pass `device={{device}}` there"
        return request.code, request.message, request.fix

    def _thread_never_selected(self, index: int) -> bool:
        selected = self.selected
        return threading.get_ident() not in selected and any(other != index for other in selected.values())

    def _unexplained(self, appeared: set[int], site: attribution.Frame | None, when: str, sessions=None) -> None:
        """DL101 at `site`, the intercepted call nearest to where the contexts appeared; from
        now on the allocator records where allocations come from (history.py)."""
        known = site is not None and site is not UNKNOWN_SITE
        site = site if known else self.entry or UNKNOWN_SITE
        for index in sorted(appeared):
            for session in self.sessions if sessions is None else sessions:
                if index in session.allowed:
                    continue
                if sessions is None:
                    self.history.start()
                leak = Leak(
                    code="DL101",
                    message=f"a CUDA context (~0.5 GiB) appeared on {label(index)} {when}, and no intercepted call asked for {label(index)}",
                    filename=site.filename,
                    line=site.line,
                    function=site.function,
                    device=label(index),
                    kind="context",
                    suggestion=_suggest("call `torch.cuda.set_device({device})` first, so code that uses the current device lands there, or launch with CUDA_VISIBLE_DEVICES", None, session.allowed),
                    stack=(str(site),) if known else (),
                )
                session.recorder.add(leak)

    def _recorded_allocations(self, session) -> None:
        """DL106: what the allocator recorded on GPUs `session` may not use, by user line."""
        for site, index, count, nbytes in self.history.allocations(lambda index: index not in session.allowed):
            leak = Leak(
                code="DL106",
                message=(
                    f"the CUDA caching allocator recorded allocations on {label(index)} made here, by a call no hook of the "
                    "tracer saw (a factory bound before tracing began, a method called through its class, C++ code); "
                    "it records from the moment a context nobody asked for appeared there (DL101)"
                ),
                filename=site.filename,
                line=site.line,
                function=site.function,
                device=label(index),
                kind="allocation",
                suggestion=_suggest("give the call on this line a device, e.g. `device={device}`, or rerun with `--thorough` to have it judged before it runs", None, session.allowed),
                stack=(str(site),),
                source_line=linecache.getline(site.filename, site.line).strip() or None,
            )
            session.recorder.update(session.recorder.add(leak, count), nbytes, False)


def _called_from_torch(frame) -> bool:
    """Is the innermost frame outside devlint torch's own code?"""
    while frame is not None:
        kind = attribution.kind(frame.f_code.co_filename)
        if kind != "devlint":
            return kind == "torch"
        frame = frame.f_back
    return False


def _suggest(fix: str, analysis, allowed) -> str:
    """The fix with `{device}` replaced by a local that holds an allowed device, else the device itself."""
    if not allowed.indices and "set_device({device})" in fix:
        return "this run allows no GPU: leave this call out, or run with the GPU it should use (`devlint run --device cuda:N`)"
    expression = next((expr for expr, where in (analysis.candidates if analysis else ()) if where.index in allowed), None)
    return fix.replace("{device}", expression or repr(allowed.first))


def _nbytes(value, index: int) -> int:
    """Bytes a call's result holds on GPU `index`: tensors and storages, also inside lists,
    tuples and dicts (a loaded checkpoint)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(item, index) for item in value)
    device = getattr(value, "device", None)
    if not isinstance(device, torch.device) or device.type != "cuda" or device.index != index:
        return 0
    if isinstance(value, torch.Tensor):
        return value.nbytes if value.layout == torch.strided else 0
    nbytes = getattr(value, "nbytes", None)  # storages
    return nbytes() if callable(nbytes) else 0


HUB = Hub()
