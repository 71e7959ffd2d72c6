"""Tracing sessions: what `devlint.trace()`, `devlint run` and the pytest plugin hold.

A Tracer is one session: the devices it allows, whether it raises at the first leak,
whether it is thorough (a function mode over every torch call, instead of hooks on the
calls that can choose a device only), and its own leak records. Sessions share the process-wide hooks (see hub.py), so they
nest; each judges every request against its own allowed devices. For per-test use,
`snapshot()` marks a moment and `leaks(since=mark)` returns only what came after it.
"""

from __future__ import annotations

import os
import sys

from devlint.runtime import attribution, job, oracle, report
from devlint.runtime.attribution import Frame
from devlint.runtime.devices import DeviceError, parse_allowed
from devlint.runtime.hub import HUB
from devlint.runtime.report import Leak, Recorder, Snapshot


class Tracer:
    def __init__(self, device=None, *, strict: bool = False, exercised: bool = False, thorough: bool | None = None, log=None) -> None:
        """`device`: one device or several (`"cuda:1"`, `1`, `"auto"`, `"cpu"`); None reads
        DEVLINT_DEVICE, else `auto`. Raises DeviceError for a device it cannot use.
        `exercised`: also count the user lines whose requests did not leak (for the report,
        so `devlint check --runtime-report` can tell a finding that ran clean).
        `thorough`: judge every torch call through a function mode, which sees what the cheap
        default cannot (README) at a cost on every op; None reads DEVLINT_THOROUGH.
        `log`: a job's process log (job.py) that every leak is streamed to."""
        self.allowed = parse_allowed(device)
        self.strict = strict
        self.track_exercised = exercised
        self.thorough = env_flag(THOROUGH_ENV) if thorough is None else bool(thorough)
        self.recorder = Recorder(log)
        self.running = False

    def start(self, entry: Frame | None = None) -> "Tracer":
        """`entry`: where the traced program starts (`devlint run`: the script), the line a
        context is blamed on when nothing nearer is known; by default the caller's line."""
        if self.running:
            raise RuntimeError("this tracer is already running")
        if entry is None:
            user, inner = attribution.chain_site(attribution.chain(sys._getframe(1)))
            entry = user or (inner[-1] if inner else None)  # started from library code (a test runner): its outermost frame
        HUB.attach(self)
        HUB.entry = HUB.entry if len(HUB.sessions) > 1 and HUB.entry else entry
        self.running = True
        return self

    def stop(self) -> None:
        """Stop judging; the hooks go when the last session stops. Safe to call twice."""
        if self.running:
            self.running = False
            HUB.detach(self)

    def __enter__(self) -> "Tracer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def leaks(self, since: Snapshot | None = None) -> list[Leak]:
        return self.recorder.leaks(since)

    def snapshot(self) -> Snapshot:
        return self.recorder.snapshot()

    def reset(self) -> None:
        self.recorder.reset()

    def report(self, command: str | None = None) -> dict:
        """The report (schema in report.py), with each visible GPU's state as of now."""
        gpus, notes = oracle.gpu_usage(self.allowed)
        HUB.account(self, gpus)
        return report.build(command, self.allowed.labels, self.leaks(), gpus, notes, self.recorder.exercised(), job.identity())


def trace(device=None, *, strict: bool = False, exercised: bool = False, thorough: bool | None = None) -> Tracer:
    """Trace a block: `with devlint.trace(device="cuda:1") as tracer: ...`, then
    `tracer.leaks()`. With `strict=True` the first leaking call raises DeviceLeakError;
    with `thorough=True` every torch call is judged (slower, sees more)."""
    return Tracer(device, strict=strict, exercised=exercised, thorough=thorough)


THOROUGH_ENV = "DEVLINT_THOROUGH"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def env_flag(name: str, environ=os.environ) -> bool:
    """A yes/no environment variable, read the way click reads `--strict`'s; unset is no."""
    value = environ.get(name, "").strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise DeviceError(f"{name}={environ[name]!r}: use 1 or 0")
