"""`devlint check`, top down: settings, discover, replay, read, index, check, suppress, selected, thread, merge, fix, render.

Each stage is a module of this package; this one only runs them in order and turns
user errors (bad configuration, missing paths, unusable reports) into one line and
exit code 2. The stages from `read` on, and the static engine under them, are imported
only when the last run's findings cannot be replayed (replay.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from devlint import config as config_module
from devlint import libraries
from devlint.check import cache, discover, replay
from devlint.output import stream

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    paths: list[Path]
    output_format: str = "text"
    select: list[str] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fix: bool = False
    unsafe_fixes: bool = False
    diff: bool = False
    force_exclude: bool = False
    use_cache: bool = True
    python: str | None = None  # --python: the environment whose libraries are read
    jobs: int | None = None
    runtime_report: tuple[Path, ...] = ()  # several: the reports of the nodes of one job
    config_file: Path | None = None
    quiet: bool = False


def _common_root(paths: list[Path]) -> Path:
    absolute = [Path(os.path.abspath(p)) for p in paths]
    dirs = [p if p.is_dir() else p.parent for p in absolute]
    return Path(os.path.commonpath([str(d) for d in dirs])) if dirs else Path.cwd()


def load_settings(paths: list[Path], config_file: Path | None) -> config_module.Settings:
    if config_file is not None:
        if not config_file.is_file():
            raise config_module.ConfigError(f"config file not found: {config_file}")
        return config_module.load(config_file, config_file.parent)
    start = _common_root(paths)
    return config_module.load(config_module.find_config(start), start)


def _libraries(options: Options, settings: config_module.Settings) -> libraries.Libraries:
    """The library knowledge for this run: --python, else the configured `python`, else
    VIRTUAL_ENV or devlint's own interpreter (docs/libraries.md)."""
    if settings.libraries == "tables":
        return libraries.Libraries(None, "tables")
    if options.python:
        environment = libraries.find(options.python, "--python")
    elif settings.python:
        environment = libraries.find(settings.python, f"`python` in {settings.config_path}", settings.root)
    else:
        environment = libraries.find()
    return libraries.Libraries(environment, use_cache=options.use_cache)


def _error(message: str) -> int:
    click.echo(f"devlint: error: {message}", err=True)
    return EXIT_ERROR


def _project_findings(result, results_cache: cache.Cache) -> list:
    """thread.project_findings, read back from the cache while its inputs are unchanged:
    the file stages' findings, every file the stages read, the files calling each name
    they searched for, and the index entries they asked (planning a threaded fix parses its
    callers: a third of a warm run on SadTalker)."""
    from devlint.check import thread
    from devlint.static.callers import ProjectCalls

    if not results_cache.enabled:
        return thread.project_findings(result)[0]
    digest = cache.findings_digest(result.findings)
    saved = results_cache.project_findings(digest)
    if saved is not None:
        findings, reads, index_deps = saved
        calls = ProjectCalls(result.works, result.index)
        if all(result.index.digest(dep) == held for dep, held in index_deps.items()) and calls.reads_same(reads):
            return findings
    result.index.start_recording()
    findings, selections = thread.project_findings(result)
    results_cache.store_project_findings(digest, findings, selections.calls.reads(), result.index.recorded())
    results_cache.save()
    return findings


def run(options: Options) -> int:
    started = time.time_ns()  # what a file's stamp is trusted against (replay.py)
    try:
        settings = load_settings(options.paths, options.config_file)
        enabled = settings.enabled(options.select, list(options.extend_select), list(options.ignore))
        known = _libraries(options, settings)
    except (config_module.ConfigError, libraries.EnvironmentNotFound) as exc:
        return _error(str(exc))
    found = discover.find(options.paths, settings, options.force_exclude)
    files, missing = found.files, found.missing
    if missing:
        for message in missing:
            click.echo(f"devlint: error: {message}", err=True)
        return EXIT_ERROR
    report = None
    reports = list(options.runtime_report) or ([settings.runtime_report] if settings.runtime_report else [])
    if reports:
        from devlint.check import merge

        try:
            report = merge.load_all(reports)
        except merge.ReportError as exc:
            if options.runtime_report or settings.runtime_report.exists():
                return _error(str(exc))
            # named in config but not produced yet (a report CI writes): check without it
            click.echo(f"devlint: {exc} (`runtime-report` in {settings.config_path}): checking without it", err=True)

    header = cache.header_key(enabled, Path.cwd())
    # Fixing, diffing and merging a runtime report always go through the stages.
    replayable = options.use_cache and not (options.fix or options.diff or reports)
    if replayable:
        record = replay.Record(settings.root)
        run_key = replay.key(header, settings, (known.mode, known.environment, [c.display for c in found.configs]))
        replayed = record.findings(run_key, files, started)
        if replayed is not None and not _needs_works(replayed[0], options.output_format):
            findings, environment = replayed
            return _render(options, findings, len(files), environment=environment)

    from devlint.check import lint, thread
    from devlint.check.suppress import Suppression

    jobs = options.jobs or lint.default_jobs()
    results_cache = cache.Cache(settings.root, header, enabled=options.use_cache)
    suppression = Suppression(settings, enabled)
    result = lint.lint(files, suppression, jobs, results_cache, known, found.configs)
    if options.fix or options.diff:
        findings, selections = thread.project_findings(result)
    else:
        findings = _project_findings(result, results_cache)
    if report is not None:
        from devlint.check import merge

        findings = merge.merge_into(findings, report, files, suppression)
    if replayable:
        outside = known.looked | results_cache.files_read() | {str(c.path) for c in found.configs}
        record.write(run_key, started, [(w.file, w.key) for w in result.works], outside, findings, known.describe())

    fixed, changed = 0, []
    if options.fix or options.diff:
        from devlint.check import fix

        outcome = fix.fix_project(
            findings, result, selections, suppression, options.unsafe_fixes, not options.diff, jobs, results_cache, known
        )
        if options.diff:
            paths = {w.file.display: w.file.path for w in result.works}
            for name, new in sorted(outcome.contents.items()):
                before = paths[name].read_bytes().decode("utf-8", "replace")
                click.echo(fix.diff(name, before, new.decode("utf-8", "replace")), nl=False)
            n = len(outcome.contents)
            message = f"{outcome.fixed} fix{'es' * (outcome.fixed != 1)} in {n} file{'s' * (n != 1)} would be applied."
            click.echo(message if n else "No fixes to apply.", err=True)
            return EXIT_FINDINGS if n else EXIT_CLEAN
        fixed, changed = outcome.fixed, sorted(outcome.contents)
        if outcome.contents:
            result = lint.lint_works(lint.replaced(result.works, outcome.contents), suppression, jobs, results_cache, known, result.index.builds)
            findings = thread.project_findings(result)[0] + outcome.unapplied_runtime
            findings.sort(key=lambda f: f.sort_key)
    if options.output_format in ("json", "sarif"):
        from devlint.check.fix import materialize

        findings = materialize(findings, result.works)
    if report is not None:
        from devlint.check.merge import evidence_order

        findings.sort(key=evidence_order)
    return _render(options, findings, len(files), fixed, changed, known.describe())


def _needs_works(findings: list, output_format: str) -> bool:
    """JSON and SARIF carry a threaded fix's edits, made from the files' text by the fix
    stage: a replay would have to read them, so those runs go through the stages."""
    return output_format in ("json", "sarif") and any(
        f.fix is not None and f.fix.threading is not None and f.fix.threading.plan is not None for f in findings
    )


def _render(options: Options, findings: list, files: int, fixed: int = 0, changed=(), environment: dict | None = None) -> int:
    _write(
        stream(
            options.output_format,
            findings,
            files=files,
            unsafe_fixes=options.unsafe_fixes,
            fixed=fixed,
            changed=list(changed),
            show_summary=not options.quiet,
            environment=environment,
        )
    )
    return EXIT_FINDINGS if findings else EXIT_CLEAN


def _write(pieces, size: int = 1 << 16) -> None:
    """Write the output as it is made, in blocks of about `size` characters: the output of
    many findings is never held whole."""
    block: list[str] = []
    held = 0
    for piece in pieces:
        block.append(piece)
        held += len(piece)
        if held >= size:
            click.echo("".join(block), nl=False, color=None)
            block, held = [], 0
    if block:
        click.echo("".join(block), nl=False, color=None)
