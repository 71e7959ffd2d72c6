"""Code actions: a finding's fix (a safe one as the preferred quick fix, an unsafe one
labelled unsafe), `# noqa: CODE` on its line, and fixing the whole document exactly as
`devlint check --fix` (`--unsafe-fixes`) would.

Edits are made in the checked text's coordinates and placed in the editor's documents
(a notebook's cells). An edit that names another file (`filename`, from multi-file
fixes) goes to that file, so one action can change several documents.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Callable

from lsprotocol import types

from devlint.server import checking
from devlint.server.documents import OpenDocument, View
from devlint.server.positions import Lines

FIX_ALL = f"{types.CodeActionKind.SourceFixAll.value}.devlint"
# Not under source.fixAll, so editors never run it on save.
FIX_ALL_UNSAFE = "source.devlint.fixAllUnsafe"
KINDS = [types.CodeActionKind.QuickFix, FIX_ALL, FIX_ALL_UNSAFE]

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_NOQA_CODES = re.compile(r"#\s*noqa:\s*[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*", re.I)


@dataclass
class Editor:
    """What building edits needs to know of the editor's documents."""

    lines: Callable[[str], Lines]  # uri -> its lines
    version: Callable[[str], int | None]  # uri -> its version (None: not open)
    uri_of: Callable[[str], str | None]  # an edit's `filename` -> uri (None: cannot be edited)
    document_changes: bool  # the client takes versioned documentChanges


def _wanted(kind: str, only: list[str] | None) -> bool:
    return not only or any(kind == k or kind.startswith(k + ".") for k in only)


def _overlaps(a: types.Range, b: types.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and (b.start.line, b.start.character) <= (a.end.line, a.end.character)


def _workspace_edit(edits: dict[str, list[types.TextEdit]], editor: Editor) -> types.WorkspaceEdit:
    if not editor.document_changes:
        return types.WorkspaceEdit(changes=edits)
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(types.OptionalVersionedTextDocumentIdentifier(uri, editor.version(uri)), list(text_edits))
            for uri, text_edits in edits.items()
        ]
    )


def _text_edits(edits, view: View, editor: Editor) -> dict[str, list[types.TextEdit]] | None:
    """Edits placed in editor documents; None when one cannot be placed."""
    out: dict[str, list[types.TextEdit]] = {}
    for edit in edits:
        other = getattr(edit, "filename", None)
        uri = editor.uri_of(other) if other else None
        if other and uri is None:
            return None
        if uri is not None and uri != view.key:
            start, end = edit.location, edit.end_location
        else:
            uri, start = view.place(edit.location)
            end_uri, end = view.place(edit.end_location)
            if end_uri != uri:
                return None
        out.setdefault(uri, []).append(types.TextEdit(editor.lines(uri).range(start, end), edit.content))
    return out


def _noqa_edit(text: str, f: checking.Finding) -> checking.Edit | None:
    """`# noqa: CODE` (or `, CODE` added to the line's noqa list) on the finding's last
    line, else its first: the first that suppresses it (not inside a string)."""
    lines = _NEWLINE.split(text)
    for row in dict.fromkeys((f.end_location.row, f.location.row)):
        line = lines[row - 1] if row <= len(lines) else ""
        listed = _NOQA_CODES.search(line)
        if listed:
            at = checking.Location(row, listed.end() + 1)
            edit = checking.Edit(f", {f.code}", at, at)
        else:
            edit = checking.Edit(f"  # noqa: {f.code}", checking.Location(row, len(line.rstrip()) + 1), checking.Location(row, len(line) + 1))
        if checking.suppressed(checking.apply_edits(text, [edit]), f.code, f.location.row, f.end_location.row):
            return edit
    return None


def _action(title, kind, edits, diagnostic, editor, preferred=False) -> types.CodeAction:
    return types.CodeAction(
        title=title,
        kind=kind,
        diagnostics=[diagnostic],
        edit=_workspace_edit(edits, editor),
        is_preferred=preferred or None,
    )


def _asked(doc: OpenDocument, uri: str, context: types.CodeActionContext, rng: types.Range):
    """The findings the request is about: under `rng`, or among the diagnostics the client
    sent along (Neovim sends the cursor's line's)."""
    sent = {(d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character) for d in context.diagnostics}
    for f, f_uri, diagnostic in doc.placed:
        r = diagnostic.range
        if f_uri == uri and (_overlaps(r, rng) or (diagnostic.code, r.start.line, r.start.character, r.end.line, r.end.character) in sent):
            yield f, diagnostic


def in_range(doc: OpenDocument, uri: str, context: types.CodeActionContext, rng: types.Range) -> list[checking.Finding]:
    return [f for f, _ in _asked(doc, uri, context, rng)]


def for_range(doc: OpenDocument, uri: str, context: types.CodeActionContext, rng: types.Range, editor: Editor) -> list[types.CodeAction]:
    """Quick fixes and noqa for the findings the request is about (structural fixes as
    planned in `doc.planned`)."""
    if not _wanted(types.CodeActionKind.QuickFix, context.only):
        return []
    view, actions, noqa = doc.checked, [], []
    for f, diagnostic in _asked(doc, uri, context, rng):
        f = doc.planned.get(id(f), f)
        if checking.fix_allowed(f.fix, unsafe=True):
            edits = _text_edits(f.fix.edits, view, editor)
            if edits is not None:
                safe = f.fix.applicability is checking.Applicability.SAFE
                title = f"devlint: {f.fix.message}" if safe else f"devlint (unsafe fix): {f.fix.message}"
                actions.append(_action(title, types.CodeActionKind.QuickFix, edits, diagnostic, editor, preferred=safe))
        if f.code != checking.UNPARSABLE:
            edit = _noqa_edit(view.text, f)
            edits = _text_edits([edit], view, editor) if edit else None
            if edits is not None:
                noqa.append(_action(f"devlint: ignore {f.code} on this line (# noqa: {f.code})", types.CodeActionKind.QuickFix, edits, diagnostic, editor))
    return actions + noqa


def fix_all(doc: OpenDocument, only: list[str] | None) -> list[types.CodeAction]:
    """The fix-everything actions worth offering, unresolved (`data` says which)."""
    fixes = [f.fix for f in doc.result.findings]
    unsafe_only = [fix for fix in fixes if checking.needs_plan(fix) or (checking.fix_allowed(fix, unsafe=True) and not checking.fix_allowed(fix, unsafe=False))]
    offers = []
    if _wanted(FIX_ALL, only) and any(checking.fix_allowed(fix, unsafe=False) for fix in fixes):
        offers.append(("devlint: fix all safe fixes in this file", FIX_ALL, False))
    if _wanted(FIX_ALL_UNSAFE, only) and unsafe_only:
        offers.append(("devlint: fix all in this file, including unsafe fixes", FIX_ALL_UNSAFE, True))
    return [
        types.CodeAction(title=title, kind=kind, data={"uri": doc.view.key, "version": doc.checked.version, "unsafe": unsafe})
        for title, kind, unsafe in offers
    ]


def _line_edits(old: str, new: str) -> list[checking.Edit]:
    """Edits turning `old` into `new`, one per run of changed lines (the rest is untouched,
    so the editor keeps its marks, folds and cursor there)."""
    before, after = _LINE_WITH_END.findall(old), _LINE_WITH_END.findall(new)
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return [
        checking.Edit("".join(after[j1:j2]), checking.Location(i1 + 1, 1), checking.Location(i2 + 1, 1))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def fix_all_edit(texts_before: dict[str, str], texts_after: dict[str, str], editor: Editor) -> types.WorkspaceEdit:
    """The edit taking each editor document (a file, a cell) from its text before to its text after."""
    edits = {}
    for uri, before in texts_before.items():
        lines = editor.lines(uri)
        changed = [types.TextEdit(lines.range(e.location, e.end_location), e.content) for e in _line_edits(before, texts_after[uri])]
        if changed:
            edits[uri] = changed
    return _workspace_edit(edits, editor)
