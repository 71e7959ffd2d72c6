"""The `devlint` command line.

Exit codes (ruff's): 0 nothing found, 1 findings remain, 2 usage or configuration
error. No traceback reaches the user: unexpected errors are reported in one line
(set DEVLINT_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from devlint import __version__
from devlint.output import FORMATS

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _fail(message: str) -> None:
    click.echo(f"devlint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _codes(values: tuple[str, ...]) -> list[str]:
    return [code for value in values for code in value.replace(",", " ").split()]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="devlint")
def cli() -> None:
    """Find and fix PyTorch code that puts tensors, models and CUDA contexts on GPU0
    instead of the device the program was told to use."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--output-format", type=click.Choice(FORMATS), default="text", show_default=True, envvar="DEVLINT_OUTPUT_FORMAT")
@click.option("--select", multiple=True, help="Rule codes or prefixes to check (replaces the configured selection).")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to add to the selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to skip.")
@click.option("--fix", is_flag=True, help="Apply safe fixes.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff, also apply unsafe fixes.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff and write nothing (exit 1 if there are any).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain.")
@click.option("--force-exclude", is_flag=True, help="Apply `exclude` to files named on the command line too (for pre-commit).")
@click.option("--no-cache", is_flag=True, help="Do not read or write .devlint_cache/ (nor the cache of library summaries).")
@click.option("--python", "python", default=None, metavar="PATH", help="Read the libraries the code imports from this interpreter's environment (or virtual environment directory); see docs/libraries.md.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores).")
@click.option("--runtime-report", type=click.Path(path_type=Path), multiple=True, help="Merge a `devlint run` / pytest-plugin report (repeatable: the reports of several nodes are joined).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Use this pyproject.toml instead of searching for one.")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no summary.")
def check(paths, output_format, select, extend_select, ignore, fix, unsafe_fixes, diff, exit_zero, force_exclude, no_cache, python, jobs, runtime_report, config_file, quiet):
    """Check PATHS (default: the current directory) for device leaks."""
    import gc

    from devlint import check as check_pipeline

    # A check allocates millions of tree nodes, few of them in cycles: collecting every 700
    # allocations (the default) cost 5% of a cold run's CPU on torch's sources; every 20,000
    # costs under 1 MB more. The imports made so far are never collected.
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    code = check_pipeline.run(
        check_pipeline.Options(
            paths=list(paths) or [Path(".")],
            output_format=output_format,
            select=_codes(select) or None,
            extend_select=tuple(_codes(extend_select)),
            ignore=tuple(_codes(ignore)),
            fix=fix,
            unsafe_fixes=unsafe_fixes,
            diff=diff,
            force_exclude=force_exclude,
            use_cache=not no_cache,
            python=python,
            jobs=jobs,
            runtime_report=tuple(runtime_report),
            config_file=config_file,
            quiet=quiet,
        )
    )
    sys.exit(EXIT_CLEAN if exit_zero and code == EXIT_FINDINGS else code)


@cli.command("rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_command(output_format):
    """List every rule in the catalog."""
    from devlint import rule_docs

    click.echo(rule_docs.listing(output_format), nl=False)


@cli.command("rule")
@click.argument("code")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rule_command(code, output_format):
    """Explain one rule: why it leaks, the torch versions, examples and the fix."""
    from devlint import catalog, rule_docs

    rules = catalog.load()
    key = code.strip().upper()
    if key not in rules:
        by_name = {r.name: c for c, r in rules.items()}
        key = by_name.get(code.strip().lower(), key)
    if key not in rules:
        _fail(f"unknown rule `{code}` (see `devlint rules`)")
    click.echo(rule_docs.page(rules[key], output_format), nl=False)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def clean(paths):
    """Remove the result cache (.devlint_cache/) of the project holding PATHS (default: here)."""
    from devlint.check import cache, load_settings

    settings = load_settings(list(paths) or [Path(".")], None)
    removed = cache.clean(settings.root)
    click.echo(f"Removed {settings.root / cache.DIRECTORY}" if removed else "No cache to remove.")


@cli.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--device", "devices", multiple=True, metavar="DEV", help="A GPU the program may use: cuda:N, N, auto (cuda:$LOCAL_RANK, else the one visible GPU) or cpu (none). Repeatable. Default: $DEVLINT_DEVICE, else auto.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write the JSON report here (also when the program fails).")
@click.option("--strict", is_flag=True, envvar="DEVLINT_STRICT", help="Raise DeviceLeakError at the first leaking call, before it runs.")
@click.option("--thorough", is_flag=True, envvar="DEVLINT_THOROUGH", help="Judge every torch call (a TorchFunctionMode), not only the calls that can choose a device: slower, sees what the default misses (factories bound before tracing, calls through the class).")
@click.option("--no-children", is_flag=True, help="Trace only this process, not the Python processes it starts (subprocesses, multiprocessing, DataLoader workers, torchrun ranks).")
@click.option("-m", "as_module", is_flag=True, help="Run TARGET as a module, like `python -m`.")
@click.argument("target", metavar="(SCRIPT | -m MODULE)")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_command(devices, report_path, strict, thorough, no_children, as_module, target, args):
    """Run a Python program under the runtime tracer and report every call that lands on
    a GPU it was not meant to use, in it and in every Python process it starts (one report
    for the job, torchrun ranks included). Exit: the program's own code if it failed, else
    1 when something leaked, else 0."""
    try:
        from devlint.runtime import run
        from devlint.runtime.devices import DeviceError
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        _fail("`devlint run` needs PyTorch: install torch for your platform (or `pip install devlint[runtime]`)")
    try:
        options = {"device": list(devices) or None, "strict": strict, "thorough": thorough}  # Tracer(**options), here and in every child
        code = run.main(target, list(args), module=as_module, report_path=report_path, children=not no_children, options=options)
    except DeviceError as exc:
        _fail(str(exc))
    sys.exit(code)


@cli.group("report")
def report_group():
    """Work with runtime reports."""


@report_group.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write the joined report here (default: stdout).")
def report_merge_command(sources, output):
    """Join the reports of several nodes (or the process logs left in a job directory)
    into one report for the job; its summary goes to stderr."""
    from devlint.check import merge

    try:
        joined = merge.join_reports(list(sources))
    except merge.ReportError as exc:
        _fail(str(exc))
    text = json.dumps(joined, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        from devlint.runtime import report as report_file

        try:
            report_file.write(joined, output)
        except OSError as exc:
            _fail(f"cannot write {output}: {exc}")
    from devlint.runtime import summary

    click.echo(summary.render(joined), err=True, nl=False)


@cli.command("server")
@click.option("--stdio", is_flag=True, help="Speak LSP on stdin/stdout (the default and only transport; accepted for editors that pass it).")
def server_command(stdio):
    """Run the language server for editors (LSP over stdio): diagnostics as you type,
    quick fixes, `# noqa` and the rule's explanation on hover. Needs the `server` extra."""
    try:
        from devlint.server.protocol import serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("pygls", "lsprotocol", "cattrs", "attrs"):
            raise
        _fail("`devlint server` needs the `server` extra: pip install 'devlint[server]'")
    sys.exit(serve())


def main() -> None:
    try:
        cli(prog_name="devlint")
    except KeyboardInterrupt:
        click.echo("devlint: interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # the last line of defence: one line, no traceback
        from devlint.catalog import CatalogError
        from devlint.config import ConfigError

        if os.environ.get("DEVLINT_DEBUG"):
            raise
        if isinstance(exc, (ConfigError, CatalogError)):
            _fail(str(exc))
        _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with DEVLINT_DEBUG=1 and report it")
