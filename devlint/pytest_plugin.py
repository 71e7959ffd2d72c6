"""The pytest plugin: fail the tests that leak onto a GPU they were not meant to use.

Off unless asked: `--devlint-device cuda:1` (repeatable), the `devlint_device` ini
option or `DEVLINT_DEVICE` turn it on; a `@pytest.mark.devlint(device=...)` marker
overrides the devices for one test (precedence: marker > command line > environment >
ini) and `@pytest.mark.devlint_off` skips checking one. `--devlint-thorough` (or
`DEVLINT_THOROUGH=1`, or ini `devlint_thorough = true`, same precedence) judges every
torch call instead of only the calls that can choose a device. One tracer runs for the whole
session, from configuration on, so leaks in fixtures of any scope are charged to the
test whose setup ran them and leaks at collection are reported, not lost. A context is
created once per process: only the first test that touches a GPU sees it appear, but
the calls of every test are judged, so each leaking test fails on its own calls.

Importing this module imports nothing heavy: torch is loaded only when the plugin is on.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field

import pytest

ENV = "DEVLINT_DEVICE"
THOROUGH_ENV = "DEVLINT_THOROUGH"
_KEY = pytest.StashKey["DevlintPlugin"]()


class DevlintLeakWarning(pytest.PytestWarning):
    """A test leaked onto a GPU it may not use (`--devlint-mode warn`)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("devlint", "devlint: fail tests that leak onto GPUs they may not use")
    group.addoption(
        "--devlint-device",
        action="append",
        default=None,
        metavar="DEV",
        help=f"a device the tests may use (cuda:1, auto; repeatable); turns the check on. Also: ini devlint_device, env {ENV}.",
    )
    group.addoption("--devlint-mode", choices=("fail", "warn"), default=None, help="fail leaking tests (default) or only warn")
    group.addoption(
        "--devlint-thorough",
        action="store_true",
        default=False,
        help=f"judge every torch call (a function mode), not only the calls that can choose a device: slower, sees more. Also: ini devlint_thorough, env {THOROUGH_ENV}.",
    )
    group.addoption("--devlint-report", metavar="FILE", default=None, help="write the session's leaks as a `devlint run` report, for `devlint check --runtime-report`")
    parser.addini("devlint_device", "devices the tests may use (turns the check on)", type="linelist", default=[])
    parser.addini("devlint_mode", "fail or warn", default="fail")
    parser.addini("devlint_thorough", "judge every torch call, not only the calls that can choose a device", type="bool", default=False)


def _devices_from(config: pytest.Config) -> tuple[list[str], str]:
    """The session's allowed devices and where they came from (command line > env > ini)."""
    cli = config.getoption("devlint_device")
    if cli:
        return [d for value in cli for d in value.replace(",", " ").split()], "command line"
    env = os.environ.get(ENV, "").strip()
    if env:
        return env.replace(",", " ").split(), ENV
    ini = config.getini("devlint_device")
    if ini:
        return [d for value in ini for d in value.replace(",", " ").split()], "ini"
    return [], ""


def _thorough_from(config: pytest.Config) -> bool | None:
    """Thorough or not (command line > env > ini); None: the tracer reads DEVLINT_THOROUGH."""
    if config.getoption("devlint_thorough"):
        return True
    if os.environ.get(THOROUGH_ENV, "").strip():
        return None
    return bool(config.getini("devlint_thorough"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "devlint(device=None, allow=()): devices this test may use (overrides the session's) and rule codes to allow")
    config.addinivalue_line("markers", "devlint_off: do not check this test for device leaks")
    devices, source = _devices_from(config)
    mode = config.getoption("devlint_mode") or config.getini("devlint_mode") or "fail"
    if mode not in ("fail", "warn"):
        raise pytest.UsageError(f"devlint_mode must be fail or warn, not {mode!r}")
    if not devices:
        return
    plugin = DevlintPlugin(config, devices, source, mode)
    config.stash[_KEY] = plugin
    config.pluginmanager.register(plugin, "devlint-plugin")


@dataclass
class TestLeaks:
    nodeid: str
    leaks: list = field(default_factory=list)  # devlint.runtime.report.Leak


def _marker_options(item: pytest.Item):
    """(devices or None, allowed codes, off) from the test's markers; bad keywords are errors."""
    if item.get_closest_marker("devlint_off") is not None:
        return None, frozenset(), True
    marker = item.get_closest_marker("devlint")
    if marker is None:
        return None, frozenset(), False
    unknown = set(marker.kwargs) - {"device", "allow"}
    if unknown or marker.args:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.devlint takes device= and allow=, not {sorted(unknown) or marker.args}")
    device = marker.kwargs.get("device")
    devices = None if device is None else ([device] if isinstance(device, (str, int)) else list(device))
    allow = marker.kwargs.get("allow", ())
    allow = frozenset([allow] if isinstance(allow, str) else allow)
    return devices, allow, False


class DevlintPlugin:
    def __init__(self, config: pytest.Config, devices: list[str], source: str, mode: str) -> None:
        self.config = config
        self.devices = devices
        self.source = source
        self.mode = mode
        self.controller = getattr(config.option, "dist", "no") not in (None, "no") and not hasattr(config, "workerinput")
        self.per_test: list[TestLeaks] = []
        self.collection: list = []
        self.worker_results: list[dict] = []
        self.worker_exercised: list[dict] = []
        self.tracer = None
        self._started = None
        self._current = None  # (item, snapshot, nested tracer or None, allowed codes, off)
        if not self.controller:
            self._start()

    # --- the session tracer ----------------------------------------------------------

    def _start(self) -> None:
        try:
            from devlint.runtime.devices import DeviceError
            from devlint.runtime.tracer import Tracer
        except ImportError as exc:  # torch is not installed
            raise pytest.UsageError(f"devlint: checking tests for device leaks needs torch ({exc})") from exc
        try:
            self.tracer = Tracer(self.devices, exercised=bool(self.config.getoption("devlint_report")), thorough=_thorough_from(self.config)).start()
        except DeviceError as exc:
            raise pytest.UsageError(f"devlint: {exc}") from exc
        self._started = self.tracer.snapshot()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.tracer is not None:
            self.tracer.stop()

    def pytest_report_header(self, config: pytest.Config) -> str:
        thorough = ", every torch call judged (thorough)" if self.tracer is not None and self.tracer.thorough else ""
        return f"devlint: tests may use {', '.join(self.devices)} (from {self.source}){thorough}; leaks elsewhere {'fail the test' if self.mode == 'fail' else 'warn'}"

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.tracer is not None:
            self.collection = self.tracer.leaks(since=self._started)

    # --- per test ----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.tracer is None:
            return
        devices, allow, off = _marker_options(item)
        nested = None
        if devices is not None and not off:
            from devlint.runtime.tracer import Tracer

            nested = Tracer(devices, thorough=self.tracer.thorough).start()
        self._current = (item, self.tracer.snapshot(), nested, allow, off)

    def _leaks_of(self, item: pytest.Item, advance: bool = False) -> list:
        """Leaks of this test since its setup began (or since the last `advance`)."""
        if self._current is None or self._current[0] is not item:
            return []
        _, mark, nested, allow, off = self._current
        if off:
            return []
        source = nested if nested is not None else self.tracer
        leaks = source.leaks(since=mark)
        if advance:
            self._current = (item, source.snapshot(), nested, allow, off)
        return [leak for leak in leaks if leak.code not in allow]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        """Setup and call leaks fail the test (F); a leak in teardown is an error of it (E)."""
        outcome = yield
        report = outcome.get_result()
        if self.tracer is None or self._current is None or self._current[0] is not item:
            return
        if report.when == "setup" and report.passed:
            return  # charged together with the call
        leaks = self._leaks_of(item, advance=True)
        if report.when == "teardown":
            nested = self._current[2]
            if nested is not None:
                nested.stop()
            self._current = None
        if not leaks:
            return
        self.per_test.append(TestLeaks(item.nodeid, leaks))
        text = self._describe(leaks, self._allowed_for(item))
        report.sections.append(("devlint", text))
        if self.mode == "warn":
            item.warn(DevlintLeakWarning(f"{item.nodeid} leaked onto a GPU it may not use:\n{text}"))
        elif report.passed:
            report.outcome = "failed"
            report.longrepr = "devlint: this test put work on a GPU it may not use (see the devlint section)"

    def _allowed_for(self, item: pytest.Item) -> list[str]:
        devices, _, _ = _marker_options(item)
        return devices or self.devices

    @staticmethod
    def _describe(leaks, allowed) -> str:
        from devlint.runtime.summary import size

        lines = [f"allowed: {', '.join(map(str, allowed))}"]
        for leak in leaks:
            calls = f"{leak.count} call{'s' if leak.count != 1 else ''}"
            lines.append(f"{leak.code} {leak.filename}:{leak.line} (in {leak.function}) on {leak.device}: {calls}, {size(leak.bytes)}")
            lines.append(f"    {leak.full_message}")
            if leak.origin:
                lines.append(f"    inside: {leak.origin}")
            lines.append(f"    fix: {leak.suggestion}")
        return "\n".join(lines)

    # --- the fixture -------------------------------------------------------------------

    def leaks_so_far(self, item: pytest.Item) -> list:
        return self._leaks_of(item)

    # --- the session's end: summary, xdist, report ----------------------------------------

    def _records(self) -> list[dict]:
        """Every leak of the session, as report entries, with the tests that hit each site."""
        merged: dict[tuple, dict] = {}
        buckets = [("collection", self.collection)] + [(t.nodeid, t.leaks) for t in self.per_test]
        for nodeid, leaks in buckets:
            for leak in leaks:
                entry = merged.setdefault(leak.key, {**leak.to_json(), "count": 0, "bytes": 0, "tests": []})
                entry["count"] += leak.count
                entry["bytes"] += leak.bytes
                entry["tests"].append(nodeid)
        return list(merged.values())

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            self.config.workeroutput["devlint"] = self._records()
            self.config.workeroutput["devlint_exercised"] = self.tracer.recorder.exercised() if self.tracer else []

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        self.worker_results.extend(output.get("devlint", []))
        self.worker_exercised.extend(output.get("devlint_exercised", []))

    def _all_records(self) -> list[dict]:
        records = self.worker_results if self.controller else self._records()
        combined: dict[tuple, dict] = {}
        for entry in records:
            key = (entry["code"], entry["filename"], entry["line"], entry["device"])
            if key in combined:
                combined[key]["count"] += entry["count"]
                combined[key]["bytes"] += entry["bytes"]
                combined[key]["tests"] += entry["tests"]
            else:
                combined[key] = {**entry, "tests": list(entry["tests"])}
        return sorted(combined.values(), key=lambda e: (e["filename"], e["line"], e["code"]))

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config) -> None:
        from devlint.runtime.summary import size

        records = self._all_records()
        path = config.getoption("devlint_report")
        if path:
            self._write_report(path, records)
        write = terminalreporter
        write.write_sep("=", "devlint")
        if not records:
            write.write_line(f"no leaks: every test stayed on {', '.join(self.devices)}")
            return
        write.write_line(f"{len(records)} leak site{'s' if len(records) != 1 else ''} on GPUs the tests may not use (allowed: {', '.join(self.devices)}):")
        for entry in records:
            tests = entry["tests"]
            who = "at collection" if tests == ["collection"] else f"{len(tests)} test{'s' if len(tests) != 1 else ''}: {tests[0]}{' ...' if len(tests) > 1 else ''}"
            calls = f"{entry['count']} call{'s' if entry['count'] != 1 else ''}"
            write.write_line(f"  {entry['code']} {entry['filename']}:{entry['line']} on {entry['device']}: {calls}, {size(entry['bytes'])} ({who})")
            write.write_line(f"      fix: {entry['suggestion']}")
        if path:
            write.write_line(f"report: {path} (merge it with `devlint check --runtime-report {path}`)")

    def _write_report(self, path: str, records: list[dict]) -> None:
        from devlint.runtime import report as report_file

        command = shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
        leaks = [{k: v for k, v in entry.items() if k != "tests"} for entry in records]
        exercised = self.worker_exercised if self.controller else (self.tracer.recorder.exercised() if self.tracer else [])
        data = {
            "version": report_file.REPORT_VERSION, "command": command, "allowed": self.devices,
            "leaks": leaks, "gpus": [], "notes": [], "exercised": exercised,
        }
        report_file.write(data, path)


@pytest.fixture
def devlint_leaks(request: pytest.FixtureRequest):
    """A function returning the leaks this test has made so far (empty when devlint is off)."""
    plugin = request.config.stash.get(_KEY, None)

    def leaks():
        return plugin.leaks_so_far(request.node) if plugin is not None else []

    return leaks
