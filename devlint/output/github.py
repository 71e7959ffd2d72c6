"""GitHub Actions workflow commands: each finding becomes an annotation on the PR diff."""

from __future__ import annotations

from devlint.findings import Finding


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    props = (
        f"file={_escape_property(f.filename)},line={f.location.row},col={f.location.column},"
        f"endLine={f.end_location.row},endColumn={f.end_location.column},title={_escape_property(f.code)}"
    )
    message = f"{f.code} {f.message}"
    if f.fix is not None and f.fix.message:
        message += f"\nfix: {f.fix.message}"
    return f"::error {props}::{_escape_data(message)}"


def stream(findings: list[Finding]):
    for f in findings:
        yield annotation(f) + "\n"

