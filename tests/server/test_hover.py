"""Hover on a diagnostic explains the rule."""

import pytest
from lsprotocol import types

from devlint import catalog

from .conftest import open_file, published

pytestmark = pytest.mark.asyncio


async def test_hover_on_a_diagnostic_shows_the_rule_explanation(client, project):
    path = project / "m.py"
    path.write_text("import torch\n\n\ndef f(path):\n    return torch.load(path)\n")
    doc = open_file(client, path)
    (diagnostic,) = await published(client, doc, version=1)
    inside = types.Position(diagnostic.range.start.line, diagnostic.range.start.character + 3)
    shown = await client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(doc), inside))
    rule = catalog.get("DL005")
    assert shown.contents.kind == types.MarkupKind.Markdown
    assert rule.summary in shown.contents.value and rule.rationale in shown.contents.value
    assert rule.url in shown.contents.value and "unsafe" in shown.contents.value
    assert shown.range == diagnostic.range
    elsewhere = types.Position(0, 0)
    assert await client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(doc), elsewhere)) is None
