"""Rule pages rendered from the catalog: `devlint rules`, `devlint rule CODE`, docs/rules/."""

from __future__ import annotations

import json

from devlint import catalog
from devlint.catalog import Rule

_GRADES = {
    "safe": "safe (applied by `--fix`)",
    "unsafe": "unsafe (applied by `--fix --unsafe-fixes`)",
    "display-only": "display-only (shown, never applied)",
}


def _fix_line(rule: Rule) -> str:
    if rule.fix_applicability is None:
        return "none"
    return _GRADES[rule.fix_applicability.value]


def rule_to_json(rule: Rule) -> dict:
    return {
        "code": rule.code,
        "name": rule.name,
        "summary": rule.summary,
        "rationale": rule.rationale,
        "versions": rule.versions,
        "scope": rule.scope,
        "fix": {"applicability": rule.fix_applicability.value if rule.fix_applicability else None, "summary": rule.fix_summary},
        "examples": [{"title": e.title, "bad": e.as_data(e.bad), "good": e.as_data(e.good)} for e in rule.examples],
        "url": rule.url,
    }


def listing(fmt: str = "text") -> str:
    rules = catalog.load().values()
    if fmt == "json":
        return json.dumps([rule_to_json(r) for r in rules], indent=2) + "\n"
    width = max(len(r.name) for r in rules)
    lines = [f"{r.code}  {r.name.ljust(width)}  {r.summary}" for r in rules]
    return "\n".join(lines) + "\n"


def markdown(rule: Rule) -> str:
    """The page: used for `devlint rule CODE` and for docs/rules/CODE.md."""
    out = [f"# {rule.code} {rule.name}", "", rule.summary, "", "## Why", "", rule.rationale, ""]
    if rule.versions:
        out += ["## PyTorch versions", "", rule.versions, ""]
    out += ["## Fix", "", f"Applicability: {_fix_line(rule)}.", "", rule.fix_summary, ""]
    for example in rule.examples:
        out += [f"## Example: {example.title}" if example.title else "## Example", "", "Leaks:", ""]
        out += _code_blocks(example.bad)
        if example.good:
            out += ["Instead:", ""] + _code_blocks(example.good)
    return "\n".join(out)


def _code_blocks(modules: dict[str, str]) -> list[str]:
    """One block per module, named when there are several."""
    out = []
    for name, text in modules.items():
        if len(modules) > 1:
            out += [f"`{name}`:", ""]
        out += ["```python", text.strip("\n"), "```", ""]
    return out


def page(rule: Rule, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(rule_to_json(rule), indent=2) + "\n"
    return markdown(rule)


def write_pages(directory) -> list:
    """Write docs/rules/CODE.md for every rule (and an index); return the paths written."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for rule in catalog.load().values():
        path = directory / f"{rule.code}.md"
        path.write_text(markdown(rule), encoding="utf-8")
        written.append(path)
    index = directory / "README.md"
    rows = "\n".join(f"| [{r.code}]({r.code}.md) | {r.name} | {r.summary} |" for r in catalog.load().values())
    index.write_text(f"# devlint rules\n\nGenerated from rules/ by `python -m devlint.rule_docs docs/rules`.\n\n| code | name | summary |\n|---|---|---|\n{rows}\n", encoding="utf-8")
    return [*written, index]


if __name__ == "__main__":
    import sys

    for path in write_pages(sys.argv[1] if len(sys.argv) > 1 else "docs/rules"):
        print(path)
