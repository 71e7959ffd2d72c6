"""Hover on a diagnostic: the rule's explanation (why it leaks, the fix, the rule page)."""

from __future__ import annotations

from lsprotocol import types

from devlint.server import checking

_GRADES = {"safe": "safe: `--fix` applies it", "unsafe": "unsafe: `--fix --unsafe-fixes` applies it", "display-only": "a suggestion, never applied"}


def _contains(rng: types.Range, position: types.Position) -> bool:
    at = (position.line, position.character)
    return (rng.start.line, rng.start.character) <= at <= (rng.end.line, rng.end.character)


def explanation(code: str) -> str | None:
    rule = checking.rule(code)
    if rule is None:
        return None
    parts = [f"**{rule.code}** `{rule.name}`: {rule.summary}", rule.rationale]
    if rule.fix_applicability is not None:
        parts.append(f"**Fix** ({_GRADES[rule.fix_applicability.value]}): {rule.fix_summary}")
    parts.append(f"[{rule.code} rule page]({rule.url})")
    return "\n\n".join(parts)


def at(diagnostics: list[types.Diagnostic], position: types.Position) -> types.Hover | None:
    """The explanation of every rule with a diagnostic under `position`."""
    hits = [d for d in diagnostics if d.source == "devlint" and _contains(d.range, position)]
    texts = [text for code in dict.fromkeys(d.code for d in hits) if (text := explanation(code))]
    if not texts:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(texts)),
        range=hits[0].range,
    )
