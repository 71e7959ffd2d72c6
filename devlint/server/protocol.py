"""`devlint server`: the Language Server Protocol over stdio, wired to pygls.

The event loop speaks the protocol; all checking runs on one worker thread (projects,
their index and the check cache are touched there only), so a check never holds up the
next keystroke and two checks never race. Edits are debounced per document; a result
for a text that has changed since is dropped, never shown.
"""

from __future__ import annotations

import asyncio
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path, to_fs_path

from devlint import __version__
from devlint.server import checking, code_actions, diagnostics, hover, notebooks
from devlint.server.debounce import Debouncer
from devlint.server.documents import OpenDocument, View
from devlint.server.positions import Lines, Workspace
from devlint.server.project import Result
from devlint.server.projects import Projects

DEBOUNCE_SECONDS = 0.03
# A document's project facts are collected once typing pauses this long: they matter to
# other files (and to its own DL003/DL012 findings), never to the keystroke's diagnostics.
FACTS_SECONDS = 0.5
_WATCHED = ["**/*.py", "**/*.pyi", "**/*.ipynb", "**/pyproject.toml", "**/*.json", "**/*.yaml", "**/*.yml"]


@dataclass
class _Outcome:
    """What a job on the checking thread hands back to the event loop."""

    result: Result | None = None  # None: the document is excluded from checking
    recheck: set[str] = field(default_factory=set)  # open documents whose findings may have changed
    problems: list[str] = field(default_factory=list)  # shown to the user


class _Answered(JsonRpcInvalidParams):
    """A request whose params did not fit its method, already answered with InvalidParams."""


class _Protocol(LanguageServerProtocol):
    """pygls drops a request whose params do not fit its method without an answer (the
    client would wait forever): answer it with the protocol's InvalidParams."""

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcInvalidParams as error:
            if "id" in data and "method" in data:
                self._send_response(data["id"], None, error.to_response_error())
                raise _Answered() from error
            raise


class DevlintServer(LanguageServer):
    def __init__(self):
        super().__init__(
            "devlint",
            __version__,
            protocol_cls=_Protocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            notebook_document_sync=types.NotebookDocumentSyncOptions(
                notebook_selector=[types.NotebookDocumentFilterWithNotebook(notebook="*", cells=[types.NotebookCellLanguage("python")])]
            ),
        )
        self.documents: dict[str, OpenDocument] = {}
        self.projects = Projects([])
        self.checker = ThreadPoolExecutor(1, thread_name_prefix="devlint-check")
        self.debouncer = Debouncer(DEBOUNCE_SECONDS, self.check)
        self.facts = Debouncer(FACTS_SECONDS, self.collect_facts)
        self.resolve_edits = False  # the client resolves a code action's edit lazily
        self.noted: set[str] = set()
        self.shut_down = False
        self.exit_code = 0  # stays 0 when stdin closes

    def report_server_error(self, error: Exception, source) -> None:
        """Errors outside a request's answer (bad notifications, a handler that raised) go
        to the client's log, not to a pop-up; a request's error is in its answer."""
        if isinstance(error, _Answered):
            return
        self.window_log_message(types.LogMessageParams(types.MessageType.Error, f"devlint: {type(error).__name__}: {error}"))

    # --- documents ----------------------------------------------------------------------

    def path_of(self, uri: str) -> Path:
        path = to_fs_path(uri)
        if path is not None:
            return Path(path)
        base = self.projects.folders[-1] if self.projects.folders else Path.cwd()  # outermost folder
        return base / (uri.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or "untitled")

    def view_of(self, key: str) -> View:
        notebook = self.workspace.get_notebook_document(notebook_uri=key)
        if notebook is not None:
            return notebooks.view_of(self.workspace, notebook, self.path_of(key))
        document = self.workspace.get_text_document(key)
        return View(key, document.version, self.path_of(key), document.source, {key: document.source})

    def key_of(self, uri: str) -> str | None:
        """The open document an editor document belongs to (a cell belongs to its notebook)."""
        if uri in self.documents:
            return uri
        notebook = self.workspace.get_notebook_document(cell_uri=uri)
        return notebook.uri if notebook is not None and notebook.uri in self.documents else None

    def units(self, text: str) -> int:
        return self.workspace.position_codec.client_num_units(text)

    def lines(self, uri: str) -> Lines:
        return Lines(self.workspace.get_text_document(uri).source, self.workspace.position_codec)

    def editor(self, base: Path) -> code_actions.Editor:
        def uri_of(filename: str) -> str:
            path = Path(filename)
            return from_fs_path(str(path if path.is_absolute() else base / path))

        def version(uri: str) -> int | None:
            document = self.workspace.text_documents.get(uri)
            return document.version if document is not None else None

        capabilities = self.client_capabilities.workspace
        edit = capabilities.workspace_edit if capabilities else None
        return code_actions.Editor(self.lines, version, uri_of, bool(edit and edit.document_changes))

    # --- checking -------------------------------------------------------------------------

    def _others(self, key: str | None = None) -> dict[str, tuple[Path, dict[str, str]]]:
        return {k: (d.view.path, d.result.deps if d.result else {}) for k, d in self.documents.items() if k != key}

    def _affected(self, projects, others, index_changed_in=None) -> set[str]:
        """Open documents to check again: those of reloaded `projects`, and those whose
        index lookups changed in `index_changed_in` (on the checking thread)."""
        keys = set()
        for key, (path, deps) in others.items():
            project = self.projects.for_path(path)
            if project in projects or (project is index_changed_in and project.depends_on_changes(deps)):
                keys.add(key)
        return keys

    def _check_job(self, view: View, others) -> _Outcome:
        reloaded = self.projects.refresh()
        project = self.projects.for_path(view.path)
        outcome = _Outcome(recheck=self._affected(reloaded, others))
        if not project.excluded(view.path):
            outcome.result = project.check(view.path, view.text, notebook=view.notebook is not None)
        outcome.problems = self.projects.take_problems()
        return outcome

    def _facts_job(self, view: View, others) -> set[str]:
        """The document's project facts, and the open documents, itself included, whose
        findings they change."""
        project = self.projects.for_path(view.path)
        if project.set_text(view.path, view.text):
            return self._affected([], others, project)
        return set()

    async def collect_facts(self, key: str) -> None:
        document = self.documents.get(key)
        if document is not None:
            for other in await self.run_job(self._facts_job, document.view, self._others()) or ():
                self.debouncer.poke(other, 0)

    async def run_job(self, job, *args):
        """A job on the checking thread; a crash is logged to the client, the session goes on."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.checker, job, *args)
        except Exception as exc:  # noqa: BLE001 - a bug in devlint must not end the session
            trace = "".join(traceback.format_exception(exc))
            self.window_log_message(types.LogMessageParams(types.MessageType.Error, f"devlint: internal error ({type(exc).__name__}: {exc}); please report it\n{trace}"))
            return None

    async def check(self, key: str) -> None:
        document = self.documents.get(key)
        if document is None:
            return
        view = document.view
        outcome = await self.run_job(self._check_job, view, self._others(key))
        if outcome is None:
            return
        self.tell(outcome.problems)
        if outcome.result is not None:
            self.note(outcome.result.notes)
        recheck = set(outcome.recheck)
        if self.documents.get(key) is document and document.view is view:
            self.publish(document, view, outcome.result)
            if outcome.result is not None:
                self.facts.poke(key, FACTS_SECONDS)
        if document.view is not view:
            recheck.discard(key)  # a check of its newer text is on its way
        for other in recheck:
            self.debouncer.poke(other, 0)

    def tell(self, problems: list[str]) -> None:
        for problem in problems:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"devlint: {problem}"))

    def note(self, notes: list[str]) -> None:
        """Merge notes (a line that moved since the runtime run), logged once each."""
        for note in notes:
            if note not in self.noted:
                self.noted.add(note)
                self.window_log_message(types.LogMessageParams(types.MessageType.Info, f"devlint: {note}"))

    def publish(self, document: OpenDocument, view: View, result: Result | None) -> None:
        lines = {uri: Lines(text, self.workspace.position_codec) for uri, text in view.texts.items()}
        placed = [(f, *diagnostics.to_diagnostic(f, view, lines)) for f in (result.findings if result else [])]
        by_uri: dict[str, list[types.Diagnostic]] = {uri: [] for uri in view.texts}
        for _, uri, diagnostic in placed:
            by_uri[uri].append(diagnostic)
        if result is None or result.parsed:
            document.kept = {uri: list(found) for uri, found in by_uri.items()}
        else:  # a syntax error mid-edit: show it with what the last good parse found
            by_uri = {uri: found + document.kept.get(uri, []) for uri, found in by_uri.items()}
        document.result, document.checked, document.placed = result, view, placed
        for uri, found in by_uri.items():
            version = view.version if uri == view.key else None
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, found, version))
        document.published = by_uri

    def follow(self, document: OpenDocument, uri: str, changes) -> None:
        """Move the kept diagnostics of `uri` along with its edits."""
        for change in changes:
            if isinstance(change, types.TextDocumentContentChangePartial) and uri in document.kept:
                document.kept[uri] = diagnostics.follow_edit(document.kept[uri], change.range, change.text, self.units)

    def opened(self, key: str) -> None:
        self.documents[key] = OpenDocument(self.view_of(key))
        self.debouncer.poke(key, 0)

    def changed(self, key: str) -> None:
        self.documents[key].view = self.view_of(key)
        self.debouncer.poke(key)

    async def closed(self, key: str) -> None:
        document = self.documents.pop(key, None)
        self.debouncer.cancel(key)
        self.facts.cancel(key)
        if document is None:
            return
        for uri in document.published:
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, []))

        def forget(path: Path, others) -> set[str]:
            project = self.projects.for_path(path)
            return self._affected([], others, project) if project.set_text(path, None) else set()

        for other in await self.run_job(forget, document.view.path, self._others()) or ():
            self.debouncer.poke(other, 0)

    async def files_changed(self, paths: list[Path]) -> None:
        """Files changed on disk (file watching, or a saved pyproject.toml)."""

        def update(others) -> set[str]:
            keys = set()
            if any(p.name == "pyproject.toml" for p in paths):
                self.projects.configs_moved()
                keys |= set(others)  # each document's project may have changed
            keys |= self._affected(self.projects.refresh(), others)
            open_paths = {path for path, _ in others.values()}
            for path in paths:
                for project in self.projects.holding(path):
                    if path not in open_paths and project.file_changed(path):
                        keys |= self._affected([], others, project)
            return keys

        for key in await self.run_job(update, self._others()) or ():
            self.debouncer.poke(key, 0)

    async def current(self, key: str) -> OpenDocument | None:
        """The document, checked in its current version (checked now if need be)."""
        document = self.documents.get(key)
        if document is not None and not document.current:
            self.debouncer.cancel(key)
            await self.check(key)
        return document if document is not None and document.current and document.result is not None else None

    def overlays(self) -> dict[Path, bytes]:
        """The open documents' contents, as their files would hold them."""
        out = {}
        for document in self.documents.values():
            view = document.view
            out[view.path] = checking.notebook_content(list(view.texts.values())) if view.notebook else checking.stored(view.text)
        return out

    async def planned(self, document: OpenDocument, findings: list[checking.Finding]) -> None:
        """Plan the structural fixes of `findings` (once per checked version)."""
        todo = [f for f in findings if checking.needs_plan(f.fix) and id(f) not in document.planned]
        if not todo:
            return
        view, overlays = document.checked, self.overlays()
        done = await self.run_job(lambda: self.projects.for_path(view.path).plan(todo, overlays))
        if done is not None and document.checked is view:
            document.planned.update(zip(map(id, todo), done))

    async def fix_all_edit(self, document: OpenDocument, unsafe: bool) -> types.WorkspaceEdit | None:
        """The edit `devlint check --fix` (`--unsafe-fixes`) would make for this document's
        findings: in it, and in the other files a structural fix changes."""
        view, result, overlays = document.checked, document.result, self.overlays()

        def fix() -> dict[Path, bytes]:
            return self.projects.for_path(view.path).fix(result.findings, unsafe, overlays)

        contents = await self.run_job(fix)
        if contents is None or document.checked is not view or not document.current:
            return None
        before, after = {}, {}
        for path, content in contents.items():
            if path == view.path and view.notebook:
                before.update(view.texts)
                after.update(zip(view.texts, checking.notebook_cells(content)))
            else:
                uri = view.key if path == view.path else from_fs_path(str(path))
                before[uri] = self.workspace.get_text_document(uri).source
                after[uri] = checking.python_text(content)
        return code_actions.fix_all_edit(before, after, self.editor(result.base))


def _python(document: types.TextDocumentItem) -> bool:
    return document.language_id == "python" or document.uri.endswith((".py", ".pyi"))


def create() -> DevlintServer:
    server = DevlintServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: DevlintServer, params: types.InitializeParams):
        # pygls's workspace exists now; keep its documents to the protocol's line breaks
        old = ls.protocol._workspace
        ls.protocol._workspace = Workspace(old.root_uri, types.TextDocumentSyncKind.Incremental, list(old.folders.values()), old.position_encoding)
        folders = [Path(p) for p in (to_fs_path(f.uri) for f in old.folders.values()) if p]
        if not folders and old.root_path:
            folders = [Path(old.root_path)]
        ls.projects = Projects(folders)
        options = params.initialization_options or {}
        if isinstance(options, dict) and isinstance(options.get("debounce"), (int, float)):
            ls.debouncer.delay = max(0.0, options["debounce"] / 1000)
        text = params.capabilities.text_document
        resolve = text.code_action.resolve_support if text and text.code_action else None
        ls.resolve_edits = bool(resolve and "edit" in resolve.properties)

    @server.feature(types.INITIALIZED)
    def initialized(ls: DevlintServer, params: types.InitializedParams):
        workspace = ls.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace else None
        if watched and watched.dynamic_registration:
            options = types.DidChangeWatchedFilesRegistrationOptions([types.FileSystemWatcher(glob) for glob in _WATCHED])
            registration = types.Registration("devlint-watched-files", types.WORKSPACE_DID_CHANGE_WATCHED_FILES, options)
            ls.client_register_capability(types.RegistrationParams([registration]))

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: DevlintServer, params):
        ls.shut_down = True
        ls.debouncer.stop()
        ls.facts.stop()
        ls.checker.shutdown(wait=False, cancel_futures=True)

    @server.feature(types.EXIT)
    def on_exit(ls: DevlintServer, params):
        ls.exit_code = 0 if ls.shut_down else 1  # the protocol's: 1 when `exit` came without `shutdown`

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: DevlintServer, params: types.DidOpenTextDocumentParams):
        if _python(params.text_document):
            ls.opened(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: DevlintServer, params: types.DidChangeTextDocumentParams):
        key = params.text_document.uri
        if key in ls.documents:
            ls.follow(ls.documents[key], key, params.content_changes)
            ls.changed(key)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: DevlintServer, params: types.DidCloseTextDocumentParams):
        await ls.closed(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: DevlintServer, params: types.DidSaveTextDocumentParams):
        path = ls.path_of(params.text_document.uri)
        if path.name == "pyproject.toml":
            await ls.files_changed([path])

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_did_open(ls: DevlintServer, params: types.DidOpenNotebookDocumentParams):
        ls.opened(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_did_change(ls: DevlintServer, params: types.DidChangeNotebookDocumentParams):
        key = params.notebook_document.uri
        if key not in ls.documents:
            return
        cells = params.change.cells
        for content in (cells.text_content or []) if cells else []:
            ls.follow(ls.documents[key], content.document.uri, content.changes)
        ls.changed(key)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    async def notebook_did_close(ls: DevlintServer, params: types.DidCloseNotebookDocumentParams):
        await ls.closed(params.notebook_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(ls: DevlintServer, params: types.DidChangeWatchedFilesParams):
        paths = [Path(p) for p in (to_fs_path(change.uri) for change in params.changes) if p]
        await ls.files_changed(paths)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: DevlintServer, params: types.HoverParams):
        key = ls.key_of(params.text_document.uri)
        if key is None:
            return None
        return hover.at(ls.documents[key].published.get(params.text_document.uri, []), params.position)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=code_actions.KINDS, resolve_provider=True),
    )
    async def on_code_action(ls: DevlintServer, params: types.CodeActionParams):
        key = ls.key_of(params.text_document.uri)
        document = await ls.current(key) if key else None
        if document is None:
            return None
        editor = ls.editor(document.result.base)
        only = params.context.only
        await ls.planned(document, code_actions.in_range(document, params.text_document.uri, params.context, params.range))
        actions = code_actions.for_range(document, params.text_document.uri, params.context, params.range, editor)
        for action in code_actions.fix_all(document, only):
            if not ls.resolve_edits:
                action.edit = await ls.fix_all_edit(document, action.data["unsafe"])
                if action.edit is None:
                    continue
            actions.append(action)
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def on_code_action_resolve(ls: DevlintServer, action: types.CodeAction):
        data = action.data if isinstance(action.data, dict) else {}
        document = await ls.current(data["uri"]) if "uri" in data else None
        if document is not None and action.edit is None:
            action.edit = await ls.fix_all_edit(document, bool(data.get("unsafe")))
        return action

    return server


def serve() -> int:
    """Speak LSP on stdin/stdout until `exit`, or until stdin closes; return the exit code."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="devlint server: %(message)s")  # stderr; stdout is the protocol
    # pygls logs bad input with tracebacks; the client hears of it through answers and its log
    logging.getLogger("pygls").setLevel(logging.CRITICAL)
    server = create()
    server.start_io()
    return server.exit_code
