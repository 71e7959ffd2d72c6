"""A real `devlint server` over stdio, driven by pytest-lsp, and helpers to talk to it."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import attrs
import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

SERVER = [sys.executable, "-m", "devlint", "server"]
TIMEOUT = 20


def uri(path: Path) -> str:
    return from_fs_path(str(path))


def capabilities() -> types.ClientCapabilities:
    """VS Code's, with notebook documents (LSP 3.17) and pull-less diagnostics."""
    caps = client_capabilities("visual-studio-code")
    notebooks = types.NotebookDocumentClientCapabilities(types.NotebookDocumentSyncClientCapabilities())
    return attrs.evolve(caps, notebook_document=notebooks)


def recording_client() -> LanguageClient:
    """The pytest-lsp client, also keeping every publishDiagnostics and registration in order."""
    client = LanguageClient()
    client.published = []
    client.registrations = []

    def publish(client: LanguageClient, params: types.PublishDiagnosticsParams):
        client.diagnostics[params.uri] = params.diagnostics
        client.published.append(params)

    def register(client: LanguageClient, params: types.RegistrationParams):
        client.registrations.extend(params.registrations)

    features = {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: publish, types.CLIENT_REGISTER_CAPABILITY: register}
    register_lsp_features(client, features)
    return client


async def start(root: Path, caps: types.ClientCapabilities | None = None, **options) -> LanguageClient:
    client = await ClientServerConfig(SERVER, client_factory=recording_client).start()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=caps or capabilities(),
            root_uri=uri(root),
            workspace_folders=[types.WorkspaceFolder(uri(root), root.name)],
            initialization_options=options or None,
        )
    )
    return client


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.devlint]\n")
    return tmp_path


@pytest_lsp.fixture(config=ClientServerConfig(SERVER, client_factory=recording_client))
async def client(lsp_client: LanguageClient, project: Path):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(),
            root_uri=uri(project),
            workspace_folders=[types.WorkspaceFolder(uri(project), project.name)],
            initialization_options={"debounce": 10},
        )
    )
    yield
    await lsp_client.shutdown_session()


async def published(client: LanguageClient, doc_uri: str, since: int = 0, version: int | None = None) -> list[types.Diagnostic]:
    """The diagnostics published for `doc_uri` after the `since`-th publication (of `version`
    when given), waiting for them."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        for params in client.published[since:]:
            if params.uri == doc_uri and (version is None or params.version == version):
                return list(params.diagnostics)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no diagnostics for {doc_uri} (version {version})")
        await asyncio.sleep(0.01)


async def quiet(client: LanguageClient, seconds: float = 0.3) -> None:
    """Wait until the server has published nothing for `seconds`."""
    while True:
        count = len(client.published)
        await asyncio.sleep(seconds)
        if len(client.published) == count:
            return


def open_file(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    text = path.read_text() if text is None else text
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri(path), "python", version, text)))
    return uri(path)


def changed_on_disk(client: LanguageClient, path: Path) -> int:
    """Tell the server, as the editor's file watcher does, that `path` changed on disk.
    Returns how many publications came before, for `published(..., since)`."""
    since = len(client.published)
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams([types.FileEvent(uri(path), types.FileChangeType.Changed)])
    )
    return since


def edit(client: LanguageClient, doc_uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
    """One incremental change: replace (line, character) start..end with `text`."""
    rng = types.Range(types.Position(*start), types.Position(*end))
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version, doc_uri),
            [types.TextDocumentContentChangePartial(rng, text)],
        )
    )


def _offset(text: str, position: types.Position) -> int:
    """Offset of a UTF-16 position (the client's encoding) in `text`."""
    lines = re.split(r"(?<=\n)", text)
    line = lines[position.line] if position.line < len(lines) else ""
    units = 0
    for column, char in enumerate(line):
        if units >= position.character:
            return sum(map(len, lines[: position.line])) + column
        units += 2 if ord(char) > 0xFFFF else 1
    return sum(map(len, lines[: position.line])) + len(line.rstrip("\r\n"))


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    spans = sorted(((_offset(text, e.range.start), _offset(text, e.range.end), e.new_text) for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def apply(edit: types.WorkspaceEdit, texts: dict[str, str]) -> dict[str, str]:
    """`texts` (uri -> text) after a workspace edit, as an editor applies it."""
    out = dict(texts)
    changes = {c.text_document.uri: c.edits for c in edit.document_changes or []} if edit.document_changes else edit.changes or {}
    for doc_uri, edits in changes.items():
        out[doc_uri] = apply_text_edits(out[doc_uri], edits)
    return out


def check_json(run_devlint, *args, cwd: Path) -> list[dict]:
    """`devlint check ... --output-format json` run in `cwd`."""
    _, out, _ = run_devlint("check", *args, "--output-format", "json", "--no-cache", cwd=cwd)
    return json.loads(out)


def as_range(finding: dict) -> types.Range:
    start, end = finding["location"], finding["end_location"]
    return types.Range(types.Position(start["row"] - 1, start["column"] - 1), types.Position(end["row"] - 1, end["column"] - 1))


def replace_all(client: LanguageClient, doc_uri: str, version: int, text: str) -> None:
    """A whole-document change, as an editor sends after applying an edit."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version, doc_uri),
            [types.TextDocumentContentChangeWholeDocument(text)],
        )
    )


async def code_actions(client: LanguageClient, doc_uri: str, rng: types.Range, only=None) -> list[types.CodeAction]:
    context = types.CodeActionContext(diagnostics=[], only=only)
    return list(await client.text_document_code_action_async(types.CodeActionParams(types.TextDocumentIdentifier(doc_uri), rng, context)) or [])


WHOLE = types.Range(types.Position(0, 0), types.Position(10**6, 0))
