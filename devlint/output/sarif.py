"""SARIF 2.1.0 for code-scanning tools (GitHub code scanning, VS Code SARIF viewer)."""

from __future__ import annotations

import json
from pathlib import Path

from devlint import __version__, catalog
from devlint.findings import Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _uri(filename: str) -> str:
    path = Path(filename)
    return path.as_uri() if path.is_absolute() else path.as_posix()


def _region(start, end) -> dict:
    return {"startLine": start.row, "startColumn": start.column, "endLine": end.row, "endColumn": end.column}


def _rule(rule: catalog.Rule) -> dict:
    example = rule.examples[0] if rule.examples else None
    markdown = f"{rule.rationale}\n\n**Fix:** {rule.fix_summary}"
    if example is not None:
        bad = "\n\n".join(text.strip() for text in example.bad.values())
        markdown += f"\n\nBad:\n```python\n{bad}\n```"
        if example.good:
            good = "\n\n".join(text.strip() for text in example.good.values())
            markdown += f"\n\nGood:\n```python\n{good}\n```"
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": f"{rule.rationale}\n\nFix: {rule.fix_summary}", "markdown": markdown},
        "helpUri": rule.url,
        "defaultConfiguration": {"level": "note" if rule.scope == "meta" else "error"},
    }


def _result(f: Finding, rule_index: dict[str, int]) -> dict:
    location = {"artifactLocation": {"uri": _uri(f.filename)}, "region": _region(f.location, f.end_location)}
    result = {
        "ruleId": f.code,
        "level": "note" if f.code.startswith("DL9") else "error",
        "message": {"text": f.message + (f"\nFix: {f.fix.message}" if f.fix and f.fix.message else "")},
        "locations": [{"physicalLocation": location}],
    }
    if f.code in rule_index:
        result["ruleIndex"] = rule_index[f.code]
    if f.library is not None:
        result["properties"] = {"library": f.library.to_json()}
    if f.fix is not None and f.fix.edits:
        by_file: dict[str, list] = {}
        for e in f.fix.edits:  # a multi-file fix: one artifactChange per file
            by_file.setdefault(e.filename or f.filename, []).append(e)
        result["fixes"] = [
            {
                "description": {"text": f"{f.fix.message} ({f.fix.applicability.value})"},
                "artifactChanges": [
                    {
                        "artifactLocation": {"uri": _uri(name)},
                        "replacements": [
                            {"deletedRegion": _region(e.location, e.end_location), "insertedContent": {"text": e.content}}
                            for e in edits
                        ],
                    }
                    for name, edits in by_file.items()
                ],
            }
        ]
    return result


def render(findings: list[Finding], environment: dict | None = None) -> str:
    """`environment`: which Python environment's libraries were read, for the run's
    properties (the same tree in the same environment gives the same findings)."""
    rules = list(catalog.load().values())
    rule_index = {r.code: i for i, r in enumerate(rules)}
    doc = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "devlint",
                        "version": __version__,
                        "informationUri": "https://github.com/devlint/devlint",
                        "rules": [_rule(r) for r in rules],
                    }
                },
                "results": [_result(f, rule_index) for f in findings],
                **({"properties": {"environment": environment}} if environment else {}),
            }
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
