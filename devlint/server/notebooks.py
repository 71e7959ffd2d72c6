"""Notebook documents (LSP 3.17): each cell is its own text document; devlint checks the
code cells as one module (an import in cell 1 resolves names in cell 3) and places what
it finds back in the cells."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.workspace import Workspace

from devlint.server.checking import NotebookModule
from devlint.server.documents import View


def _is_python(cell: types.NotebookCell, workspace: Workspace) -> bool:
    if cell.kind != types.NotebookCellKind.Code:
        return False
    language = workspace.get_text_document(cell.document).language_id
    return language in (None, "python")


def view_of(workspace: Workspace, notebook: types.NotebookDocument, path: Path) -> View:
    texts = {
        cell.document: workspace.get_text_document(cell.document).source
        for cell in notebook.cells
        if _is_python(cell, workspace)
    }
    module = NotebookModule(list(texts.values()))
    return View(notebook.uri, notebook.version, path, module.text, texts, module)

