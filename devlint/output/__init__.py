"""Renderers for `devlint check --output-format`: one module per format."""

from __future__ import annotations

FORMATS = ("text", "json", "sarif", "github")


def render(fmt: str, findings: list, environment: dict | None = None, **context) -> str:
    """`environment`: which environment's libraries were read (SARIF run properties)."""
    if fmt == "json":
        from devlint.output import json

        return json.render(findings)
    if fmt == "sarif":
        from devlint.output import sarif

        return sarif.render(findings, environment)
    if fmt == "github":
        from devlint.output import github

        return github.render(findings)
    from devlint.output import text

    return text.render(findings, **context)
