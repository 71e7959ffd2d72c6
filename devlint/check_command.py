"""`devlint check`: configuration, discovery, linting, fixing and output, in that order."""

from __future__ import annotations

import os
from pathlib import Path

import click

from devlint import config as config_module
from devlint import cache, discovery, linter
from devlint.output import render
from devlint.static import analyze, document, noqa

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


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


def _fix_files(result, files, settings, enabled, unsafe, write, jobs):
    """Fix every file with an applicable fix; return (fixed count, diffs, remaining findings)."""
    from devlint import fixing
    from devlint.checks import all_checks

    by_name = {f.display: f for f in files}
    wanted = {f.filename for f in result.findings if fixing.allowed(f.fix, unsafe)}
    if not wanted:
        return 0, [], result.findings
    index = linter.build_index(files, jobs)
    checks = all_checks()
    remaining = [f for f in result.findings if f.filename not in wanted]
    fixed_total, diffs = 0, []
    for name in sorted(wanted):
        file = by_name[name]
        ignored = settings.ignored_for(linter.root_relative(file, settings))
        own = [f for f in result.findings if f.filename == name]
        raw = file.path.read_bytes()
        python, notebook = document.python_of(file.display, raw)
        source = analyze.parse(python, file.display).source

        def recheck(text: str, _file=file, _ignored=ignored, _source=source):
            found = analyze.check(_source.to_bytes(text), _file.display, _file.module, enabled, index, checks).findings
            return [f for f in found if f.code not in _ignored]

        runtime_only = [f for f in own if f.runtime and f.runtime.get("runtime_only")] if not notebook else []
        outcome = fixing.fix_source(source, recheck(source.text) + runtime_only, recheck, unsafe)
        for message in outcome.dropped:
            click.echo(f"devlint: {name}: {message}", err=True)
        new_bytes = notebook.with_python(outcome.text) if notebook else source.to_bytes(outcome.text)
        if outcome.changed:
            if write:
                try:
                    fixing.write_atomically(file.path, new_bytes)
                except (OSError, UnicodeEncodeError) as exc:
                    click.echo(f"devlint: {name}: not written: {exc}", err=True)
                    remaining.extend(own)
                    continue
            else:
                diffs.append(fixing.diff(name, raw.decode("utf-8", "replace"), new_bytes.decode("utf-8", "replace")))
        fixed_total += outcome.fixed
        remaining.extend([notebook.to_cells(f) for f in outcome.remaining] if notebook else outcome.remaining)
        remaining.extend(f for f in runtime_only if not fixing.allowed(f.fix, unsafe))  # the re-check cannot see them
    remaining.sort(key=lambda f: f.sort_key)
    return fixed_total, diffs, remaining


def _merge_report(findings, report, files, settings, enabled):
    """Join the runtime report's leaks to the findings of the checked files; runtime-only
    findings obey the same selection, per-file ignores and `# noqa` as static ones."""
    from devlint import merge
    checked = {os.path.realpath(f.path): f.display for f in files}
    by_display = {f.display: f for f in files}
    parsed_files = {}

    def read(display):
        if display not in parsed_files:
            file = by_display[display]
            parsed = None if file.path.suffix == ".ipynb" else analyze.parse(file.path.read_bytes(), display)
            parsed_files[display] = (parsed.source, parsed.tree) if parsed and parsed.tree else (None, None)
        return parsed_files[display]

    merged = merge.merge(findings, report, checked, read)
    for note in merged.notes:
        click.echo(f"devlint: {note}", err=True)
    kept = []
    for f in merged.findings:
        if f.runtime and f.runtime.get("runtime_only"):
            file = by_display[f.filename]
            if f.code not in enabled or f.code in settings.ignored_for(linter.root_relative(file, settings)):
                continue
            if noqa.parse(read(f.filename)[0].text).suppresses(f.code, f.location.row, f.end_location.row):
                continue
        kept.append(f)
    return kept


def run(
    paths: list[Path],
    output_format: str,
    select: list[str],
    extend_select: list[str],
    ignore: list[str],
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    force_exclude: bool,
    use_cache: bool,
    jobs: int | None,
    runtime_report: Path | None,
    config_file: Path | None,
    quiet: bool,
) -> int:
    try:
        settings = load_settings(paths, config_file)
        enabled = settings.enabled(select or None, extend_select, ignore)
    except config_module.ConfigError as exc:
        click.echo(f"devlint: error: {exc}", err=True)
        return EXIT_ERROR
    files, missing = discovery.discover(paths, settings, force_exclude)
    if missing:
        for message in missing:
            click.echo(f"devlint: error: {message}", err=True)
        return EXIT_ERROR
    report = None
    report_path = runtime_report if runtime_report is not None else settings.runtime_report
    if report_path is not None:
        from devlint import merge

        try:
            report = merge.load(report_path)
        except merge.ReportError as exc:
            if runtime_report is None and not report_path.exists():  # named in config, not produced yet
                click.echo(f"devlint: {exc} (`runtime-report` in {settings.config_path}): checking without it", err=True)
            else:
                click.echo(f"devlint: error: {exc}", err=True)
                return EXIT_ERROR
    jobs = jobs or linter.default_jobs()
    results_cache = cache.Cache(settings.root, cache.header_key(enabled), enabled=use_cache)
    result = linter.lint(files, settings, enabled, jobs=jobs, cache=results_cache)
    if report is not None:
        result.findings = _merge_report(result.findings, report, files, settings, enabled)
    findings = result.findings
    fixed = 0
    if fix or diff:
        fixed, diffs, findings = _fix_files(result, files, settings, enabled, unsafe_fixes, write=not diff, jobs=jobs)
        if diff:
            for patch in diffs:
                click.echo(patch, nl=False)
            n = len(diffs)
            click.echo(f"{fixed} fix{'es' * (fixed != 1)} in {n} file{'s' * (n != 1)} would be applied." if n else "No fixes to apply.", err=True)
            return EXIT_FINDINGS if diffs else EXIT_CLEAN
    if report is not None:
        from devlint.merge import evidence_order

        findings.sort(key=evidence_order)
    output = render(output_format, findings, files=result.files, unsafe_fixes=unsafe_fixes, fixed=fixed, show_summary=not quiet)
    click.echo(output, nl=False, color=None)
    return EXIT_FINDINGS if findings else EXIT_CLEAN
