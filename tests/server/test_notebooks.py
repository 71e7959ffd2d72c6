"""Notebook documents (LSP 3.17): the cells are checked as one module, as `devlint check`
checks an .ipynb file, and what is found lands in the right cell."""

import json
from pathlib import Path

import pytest
from lsprotocol import types

from .conftest import WHOLE, apply, as_range, check_json, code_actions, published, uri

pytestmark = pytest.mark.asyncio

CELLS = [
    ("markdown", "# Loading a checkpoint"),
    ("code", "%matplotlib inline\nimport torch\n\ndevice = torch.device('cuda', 1)"),
    ("code", "weights = torch.load('w.pth')\nframes = torch.zeros(4).cuda()"),
    ("code", "!nvidia-smi\nmodel = torch.nn.Linear(2, 2).to(device)"),
]


def _write_notebook(path: Path, cells) -> None:
    data = {
        "cells": [{"cell_type": kind, "metadata": {}, "source": text, **({"outputs": [], "execution_count": None} if kind == "code" else {})} for kind, text in cells],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def _open_notebook(client, path: Path, cells) -> tuple[str, list[str]]:
    """Open the notebook; return its uri and its code cells' uris."""
    notebook_uri = uri(path)
    cell_uris = [f"vscode-notebook-cell:{path}#cell{i}" for i in range(len(cells))]
    client.notebook_document_did_open(
        types.DidOpenNotebookDocumentParams(
            types.NotebookDocument(
                notebook_uri, "jupyter-notebook", 1,
                [types.NotebookCell(types.NotebookCellKind.Code if kind == "code" else types.NotebookCellKind.Markup, u) for (kind, _), u in zip(cells, cell_uris)],
            ),
            [types.TextDocumentItem(u, "python" if kind == "code" else "markdown", 1, text) for (kind, text), u in zip(cells, cell_uris)],
        )
    )
    return notebook_uri, [u for (kind, _), u in zip(cells, cell_uris) if kind == "code"]


async def test_notebook_diagnostics_land_in_their_cells_as_check_reports_them(client, project, run_devlint):
    path = project / "demo.ipynb"
    _write_notebook(path, CELLS)
    _, code_cells = _open_notebook(client, path, CELLS)
    expected = check_json(run_devlint, "demo.ipynb", cwd=project)
    assert {f["cell"] for f in expected} == {2}
    for number, cell_uri in enumerate(code_cells, start=1):
        seen = await published(client, cell_uri)
        mine = [f for f in expected if f["cell"] == number]
        assert sorted((d.code, d.range) for d in seen) == sorted((f["code"], as_range(f)) for f in mine), number


async def test_an_edited_cell_is_checked_again(client, project):
    path = project / "demo.ipynb"
    _write_notebook(path, CELLS)
    notebook_uri, code_cells = _open_notebook(client, path, CELLS)
    assert sorted(d.code for d in await published(client, code_cells[1])) == ["DL005", "DL011"]
    since = len(client.published)
    change = types.TextDocumentContentChangePartial(types.Range(types.Position(0, 28), types.Position(0, 28)), ", map_location=device")
    client.notebook_document_did_change(
        types.DidChangeNotebookDocumentParams(
            types.VersionedNotebookDocumentIdentifier(2, notebook_uri),
            types.NotebookDocumentChangeEvent(
                cells=types.NotebookDocumentCellChanges(
                    text_content=[types.NotebookDocumentCellContentChanges(types.VersionedTextDocumentIdentifier(2, code_cells[1]), [change])]
                )
            ),
        )
    )
    assert [d.code for d in await published(client, code_cells[1], since)] == ["DL011"]


async def test_fix_all_in_a_notebook_gives_what_fix_gives(client, project, run_devlint):
    path = project / "demo.ipynb"
    _write_notebook(path, CELLS)
    _, code_cells = _open_notebook(client, path, CELLS)
    await published(client, code_cells[1])
    (action,) = await code_actions(client, code_cells[1], WHOLE, only=["source.devlint.fixAllUnsafe"])
    action = await client.code_action_resolve_async(action)
    texts = apply(action.edit, {u: text for u, (kind, text) in zip(code_cells, [c for c in CELLS if c[0] == "code"])})
    run_devlint("check", "demo.ipynb", "--fix", "--unsafe-fixes", "--no-cache", cwd=project)
    fixed = [cell["source"] for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]
    assert [texts[u] for u in code_cells] == fixed
    assert "%matplotlib inline" in texts[code_cells[0]] and "cuda()" not in texts[code_cells[1]]
