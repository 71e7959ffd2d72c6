"""Renderers for `devlint check --output-format`: one module per format.

Text, GitHub annotations and JSON are produced a finding at a time (`stream`), so that the
output of many findings is written as it is made instead of held as one string; SARIF is
one document.
"""

from __future__ import annotations

from collections.abc import Iterator

FORMATS = ("text", "json", "sarif", "github")


def stream(fmt: str, findings: list, environment: dict | None = None, **context) -> Iterator[str]:
    """The output in pieces whose concatenation is the whole output. `environment`: which
    environment's libraries were read (SARIF run properties)."""
    if fmt == "json":
        from devlint.output import json

        return json.stream(findings)
    if fmt == "sarif":
        from devlint.output import sarif

        return iter([sarif.render(findings, environment)])
    if fmt == "github":
        from devlint.output import github

        return github.stream(findings)
    from devlint.output import text

    return text.stream(findings, **context)

