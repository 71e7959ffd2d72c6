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

The Python processes a test starts are checked too, against the test's devices: their
leaks fail the test that started them and name the process (pytest_jobs.py: the job of
`devlint run`, one per test). `--devlint-no-children` or the ini `devlint_children =
false` turn that off, as `devlint run --no-children` does.

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
    group.addoption(
        "--devlint-no-children",
        action="store_true",
        default=None,
        help="check the test processes only, not the Python processes the tests start (multiprocessing, DataLoader workers, subprocess, torchrun). Also: ini devlint_children = false.",
    )
    parser.addini("devlint_device", "devices the tests may use (turns the check on)", type="linelist", default=[])
    parser.addini("devlint_mode", "fail or warn", default="fail")
    parser.addini("devlint_thorough", "judge every torch call, not only the calls that can choose a device", type="bool", default=False)
    parser.addini("devlint_children", "also check the Python processes the tests start (default true)", type="bool", default=True)


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
    children = not config.getoption("devlint_no_children") and config.getini("devlint_children")
    plugin = DevlintPlugin(config, devices, source, mode, children)
    config.stash[_KEY] = plugin
    config.pluginmanager.register(plugin, "devlint-plugin")


@dataclass
class TestLeaks:
    nodeid: str
    leaks: list = field(default_factory=list)  # report entries: leak dicts with `processes`
    late: frozenset = frozenset()  # sites where a process the test started leaked after the test ended


@dataclass
class Running:
    """The test being run."""

    item: pytest.Item
    mark: object  # a snapshot of the tracer judging it: its leaks are those after it
    nested: object  # its own Tracer when its marker names devices, else None
    allow: frozenset
    off: bool
    job: object = None  # pytest_jobs.TestJob following the processes it starts, if any


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


def _site(entry: dict) -> tuple:
    return (entry["code"], entry["filename"], entry["line"], entry["device"])


def _combine(entries: list[dict]) -> list[dict]:
    """Entries of the same site as one: counts, bytes, processes (one per process), tests."""
    combined: dict[tuple, dict] = {}
    for entry in entries:
        key = _site(entry)
        into = combined.get(key)
        if into is None:
            combined[key] = {**entry, "processes": [dict(p) for p in entry["processes"]], "tests": list(entry["tests"]), "late": list(entry["late"])}
            continue
        into["count"] += entry["count"]
        into["bytes"] += entry["bytes"]
        for process in entry["processes"]:
            same = next((p for p in into["processes"] if (p["host"], p["pid"]) == (process["host"], process["pid"])), None)
            if same is None:
                into["processes"].append(dict(process))
            else:
                same["count"] += process["count"]
                same["bytes"] += process["bytes"]
        into["tests"] += [t for t in entry["tests"] if t not in into["tests"]]
        into["late"] += [t for t in entry["late"] if t not in into["late"]]
        into["children"] = sorted(set(into["children"]) | set(entry["children"]))
    return sorted(combined.values(), key=lambda e: (e["filename"], e["line"], e["code"]))


def _children_text(processes: list[dict]) -> str:
    """`child process 41`, `child processes 41, 42`, `ranks 0-1 (pid 41, 42)`."""
    from devlint.runtime.summary import spans

    pids = ", ".join(str(p["pid"]) for p in processes)
    ranks = [p["rank"] for p in processes if p.get("rank") is not None]
    if ranks:
        return f"rank{'s' if len(set(ranks)) > 1 else ''} {spans(ranks)} (pid {pids})"
    return f"child process{'es' if len(processes) > 1 else ''} {pids}"


class DevlintPlugin:
    def __init__(self, config: pytest.Config, devices: list[str], source: str, mode: str, children: bool = True) -> None:
        self.config = config
        self.devices = devices
        self.source = source
        self.mode = mode
        self.children = children
        self.controller = getattr(config.option, "dist", "no") not in (None, "no") and not hasattr(config, "workerinput")
        self.per_test: list[TestLeaks] = []
        self.collection: list = []
        self.worker_results: list[dict] = []
        self.worker_jobs: list[dict] = []  # each worker's job_report
        self.tracer = None
        self.jobs = None  # pytest_jobs.SessionJobs, when child processes are followed
        self.job_report: dict | None = None  # what the tests' processes recorded, once the session ends
        self._started = None
        self._me = None  # this process, as report entries name it (job.identity())
        self._current: Running | None = None
        if not self.controller:
            self._start()

    # --- the session tracer ----------------------------------------------------------

    def _start(self) -> None:
        try:
            from devlint.runtime.devices import DeviceError
            from devlint.runtime.tracer import Tracer
        except ImportError as exc:  # torch is not installed
            raise pytest.UsageError(f"devlint: checking tests for device leaks needs torch ({exc})") from exc
        from devlint.runtime.job import identity

        options = {"device": self.devices, "exercised": bool(self.config.getoption("devlint_report")), "thorough": _thorough_from(self.config)}
        try:
            self.tracer = Tracer(**options).start()
        except DeviceError as exc:
            raise pytest.UsageError(f"devlint: {exc}") from exc
        options["thorough"] = self.tracer.thorough  # as read from the environment, for the tests' children
        self._started = self.tracer.snapshot()
        self._me = identity()
        if self.children:
            from devlint.pytest_jobs import SessionJobs

            try:
                self.jobs = SessionJobs(options)
            except OSError as exc:
                self.tracer.stop()
                raise pytest.UsageError(f"devlint: cannot make a directory for the tests' child processes: {exc}") from exc

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._current is not None and self._current.job is not None:
            self._current.job.stop_following()  # the session was interrupted in a test
        if self.jobs is not None:
            self.jobs.close()  # already gone unless the session ended before its finish
        if self.tracer is not None:
            self.tracer.stop()

    def pytest_report_header(self, config: pytest.Config) -> str:
        thorough = ", every torch call judged (thorough)" if self.tracer is not None and self.tracer.thorough else ""
        children = "" if self.children else "; the processes tests start are not checked"
        return f"devlint: tests may use {', '.join(self.devices)} (from {self.source}){thorough}; leaks elsewhere {'fail the test' if self.mode == 'fail' else 'warn'}{children}"

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.tracer is not None:
            self.collection = [self._entry(leak) for leak in self.tracer.leaks(since=self._started)]

    def _entry(self, leak) -> dict:
        """A leak of this process (a Leak) as a report entry."""
        return {**leak.to_json(), "processes": [{**self._me, "count": leak.count, "bytes": leak.bytes}], "children": []}

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
        judge = nested or self.tracer
        job = self.jobs.follow(item.nodeid, devices, judge, allow) if self.jobs is not None and not off else None
        self._current = Running(item, judge.snapshot(), nested, allow, off, job)

    def _leaks_of(self, item: pytest.Item, advance: bool = False) -> list:
        """Leaks of this test in this process since its setup began (or since the last `advance`)."""
        running = self._current
        if running is None or running.item is not item or running.off:
            return []
        judge = running.nested or self.tracer
        leaks = judge.leaks(since=running.mark)
        if advance:
            running.mark = judge.snapshot()
        return [leak for leak in leaks if leak.code not in running.allow]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        """Setup and call leaks fail the test (F); a leak in teardown is an error of it (E)."""
        outcome = yield
        report = outcome.get_result()
        running = self._current
        if self.tracer is None or running is None or running.item is not item:
            return
        if report.when == "setup" and report.passed:
            return  # charged together with the call
        leaks = [self._entry(leak) for leak in self._leaks_of(item, advance=True)]
        if leaks:
            self.per_test.append(TestLeaks(item.nodeid, leaks))  # its processes' leaks join at the session's end
        notes = []
        if running.job is not None:
            if report.when == "teardown":
                running.job.stop_following()
            leaks = leaks + running.job.read(wait=self.jobs.test_wait if report.when == "teardown" else None)
            notes = running.job.notes if report.when == "teardown" else []
        if report.when == "teardown":
            if running.nested is not None:
                running.nested.stop()
            self._current = None
        if not leaks:
            return
        text = self._describe(leaks, self._allowed_for(item), notes)
        report.sections.append(("devlint", text))
        if self.mode == "warn":
            item.warn(DevlintLeakWarning(f"{item.nodeid} leaked onto a GPU it may not use:\n{text}"))
        elif report.passed:
            report.outcome = "failed"
            report.longrepr = f"devlint: this test put work on a GPU it may not use: {self._headline(leaks)} (see the devlint section)"

    def _allowed_for(self, item: pytest.Item) -> list[str]:
        devices, _, _ = _marker_options(item)
        return devices or self.devices

    def _headline(self, leaks: list[dict]) -> str:
        """The first site, and where it ran when not in this process, for the one-line summary."""
        from devlint.runtime.summary import short_path

        first = leaks[0]
        elsewhere = [p for p in first["processes"] if p["pid"] != self._me["pid"]]
        more = f" and {len(leaks) - 1} more" if len(leaks) > 1 else ""
        return f"{first['code']} {short_path(first['filename'])}:{first['line']}{' in ' + _children_text(elsewhere) if elsewhere else ''}{more}"

    def _describe(self, leaks: list[dict], allowed, notes=()) -> str:
        from devlint.runtime.summary import size

        lines = [f"allowed: {', '.join(map(str, allowed))}"]
        for leak in leaks:
            calls = f"{leak['count']} call{'s' if leak['count'] != 1 else ''}"
            elsewhere = [p for p in leak["processes"] if p["pid"] != self._me["pid"]]
            where = f", in {_children_text(elsewhere)}" if elsewhere else ""
            lines.append(f"{leak['code']} {leak['filename']}:{leak['line']} (in {leak['function']}) on {leak['device']}: {calls}, {size(leak['bytes'])}{where}")
            lines.append(f"    {leak['message']}")
            if leak["origin"]:
                lines.append(f"    inside: {leak['origin']}")
            lines.append(f"    fix: {leak['suggestion']}")
        lines += [f"note: {note}" for note in notes]
        return "\n".join(lines)

    # --- the fixture -------------------------------------------------------------------

    def leaks_so_far(self, item: pytest.Item) -> list:
        return self._leaks_of(item)

    # --- the session's end: summary, xdist, report ----------------------------------------

    def _records(self) -> list[dict]:
        """Every leak of the session (of this process and of the processes its tests started)
        as report entries, with the tests that hit each site."""
        buckets = [TestLeaks("collection", self.collection), *self.per_test]
        return _combine([
            {**leak, "tests": [bucket.nodeid], "late": [bucket.nodeid] if _site(leak) in bucket.late else []}
            for bucket in buckets
            for leak in bucket.leaks
        ])

    def _settle(self) -> None:
        """The session is over: each test's processes' leaks join its record; `job_report`
        holds every traced process, their GPUs, notes and exercised lines, this one's included."""
        from devlint import reports

        if self.tracer is None or self.job_report is not None:
            return
        me = {**self._me, "parent": None, "allowed": self.devices, "finished": True}
        parts = [{"leaks": [], "exercised": self.tracer.recorder.exercised(), "processes": [me]}]
        if self.jobs is not None:
            for job, late in self.jobs.settle():
                leaks = [{**leak, "children": [p["pid"] for p in leak["processes"]]} for leak in job.report["leaks"]]
                if leaks:
                    self.per_test.append(TestLeaks(job.nodeid, leaks, frozenset(_site(leak) for leak in late)))
                parts.append({**job.report, "leaks": [], "notes": [f"{job.nodeid}: {note}" for note in job.notes]})
            self.jobs.close()
        self.job_report = reports.join(parts)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._settle()
        if hasattr(self.config, "workerinput"):
            self.config.workeroutput["devlint"] = self._records()
            self.config.workeroutput["devlint_job"] = self.job_report
        elif self.mode == "fail" and session.exitstatus == pytest.ExitCode.OK and any(entry["late"] for entry in self._all_records()):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # no test is left to fail for them

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        self.worker_results.extend(output.get("devlint", []))
        if output.get("devlint_job"):
            self.worker_jobs.append(output["devlint_job"])

    def _all_records(self) -> list[dict]:
        return _combine(self.worker_results) if self.controller else self._records()

    def _all_processes(self) -> dict:
        """Every traced process of the session, their GPUs, notes and exercised lines."""
        from devlint import reports

        return reports.join(self.worker_jobs) if self.controller else (self.job_report or reports.join([]))

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
            if entry["late"]:
                who += ", after it ended" if len(tests) == 1 else f"; after {entry['late'][0]} ended"
            children = [p for p in entry["processes"] if p["pid"] in entry["children"]]
            if children:
                who += f"; {_children_text(children)}"
            calls = f"{entry['count']} call{'s' if entry['count'] != 1 else ''}"
            write.write_line(f"  {entry['code']} {entry['filename']}:{entry['line']} on {entry['device']}: {calls}, {size(entry['bytes'])} ({who})")
            write.write_line(f"      fix: {entry['suggestion']}")
        for note in self._all_processes()["notes"]:
            write.write_line(f"  note: {note}")
        if self.mode == "fail" and any(entry["late"] for entry in records):
            write.write_line("processes that tests started leaked after their test had ended: no test is left to fail, so the session fails")
        if path:
            write.write_line(f"report: {path} (merge it with `devlint check --runtime-report {path}`)")

    def _write_report(self, path: str, records: list[dict]) -> None:
        from devlint.runtime import report as report_file

        command = shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
        leaks = [{k: v for k, v in entry.items() if k not in ("tests", "late", "children")} for entry in records]
        processes = self._all_processes()
        data = {
            "version": report_file.REPORT_VERSION, "command": command, "allowed": self.devices,
            "leaks": leaks, "gpus": processes["gpus"], "notes": processes["notes"], "exercised": processes["exercised"],
            "processes": processes["processes"],
        }
        report_file.write(data, path)


@pytest.fixture
def devlint_leaks(request: pytest.FixtureRequest):
    """A function returning the leaks this test has made so far in this process (empty when
    devlint is off); the leaks of the processes it started are read when each phase ends."""
    plugin = request.config.stash.get(_KEY, None)

    def leaks():
        return plugin.leaks_so_far(request.node) if plugin is not None else []

    return leaks
