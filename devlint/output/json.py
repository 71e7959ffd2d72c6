"""JSON output in the schema of `ruff check --output-format json`, plus `runtime` and `library`
(which library version, installed or devlint's table, a finding relies on)."""

from __future__ import annotations

import json
import os

from devlint import catalog
from devlint.findings import Finding


def _fix_to_json(f: Finding) -> dict | None:
    if f.fix is None:
        return None
    data = f.fix.to_json()
    for edit in data["edits"]:
        if "filename" in edit:  # absolute, like the finding's own filename
            edit["filename"] = os.path.abspath(edit["filename"])
    return data


def finding_to_json(f: Finding) -> dict:
    rules = catalog.load()
    return {
        "code": f.code,
        "message": f.message,
        "filename": os.path.abspath(f.filename),
        "location": f.location.to_json(),
        "end_location": f.end_location.to_json(),
        "fix": _fix_to_json(f),
        "url": rules[f.code].url if f.code in rules else None,
        "noqa_row": f.noqa_row,
        "cell": f.cell,
        "runtime": f.runtime,
        "library": None if f.library is None else f.library.to_json(),
    }


def render(findings: list[Finding]) -> str:
    return json.dumps([finding_to_json(f) for f in findings], indent=2, ensure_ascii=False) + "\n"
