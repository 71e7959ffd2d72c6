"""Code actions from the real server: each fix applied in the editor gives what
`devlint check --fix` (`--unsafe-fixes`) gives; `# noqa: CODE` silences what it names."""

import shutil
import textwrap
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from devlint import catalog
from devlint.server import code_actions as actions_module
from devlint.server.checking import Location
from devlint.server.documents import View
from devlint.server.positions import Lines
from pygls.workspace.position_codec import PositionCodec

from .conftest import SERVER, WHOLE, apply, capabilities, code_actions, open_file, published, quiet, recording_client, replace_all, start, uri

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FIX_ALL, FIX_ALL_UNSAFE = "source.fixAll.devlint", "source.devlint.fixAllUnsafe"


def _modules(example_modules: dict[str, str]) -> dict[str, str]:
    return {name: textwrap.dedent(text) for name, text in example_modules.items()}


def _examples():
    from devlint.check.snippet import lint_modules

    for code, rule in catalog.load().items():
        for index, example in enumerate(rule.examples):
            grades = {f.fix.applicability.value for f in lint_modules(_modules(example.bad)) if f.fix and f.fix.applicable}
            for unsafe in (False, True):
                if "safe" in grades or (unsafe and "unsafe" in grades):
                    yield pytest.param(code, index, unsafe, id=f"{code}-{index}-{'unsafe' if unsafe else 'safe'}")


def _quick_fixes(found: list[types.CodeAction], unsafe: bool) -> list[types.CodeAction]:
    fixes = [a for a in found if a.kind == types.CodeActionKind.QuickFix and "# noqa" not in a.title]
    return [a for a in fixes if unsafe or a.is_preferred]


def _together(actions: list[types.CodeAction]) -> types.WorkspaceEdit:
    """Several actions' edits of one version of the documents as one edit. They do not
    overlap; findings that share a structural fix bring the same edits, kept once."""
    edits: dict[str, dict] = {}
    for action in actions:
        for change in action.edit.document_changes:
            for e in change.edits:
                edits.setdefault(change.text_document.uri, {})[(e.range.start.line, e.range.start.character, e.range.end.line, e.range.end.character, e.new_text)] = e
    return types.WorkspaceEdit(
        document_changes=[types.TextDocumentEdit(types.OptionalVersionedTextDocumentIdentifier(u, None), list(found.values())) for u, found in edits.items()]
    )


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(SERVER, client_factory=recording_client))
async def examples_client(lsp_client: LanguageClient, tmp_path_factory):
    """One server for every rule example (each a project of its own): starting one per example costs more than the test."""
    root = tmp_path_factory.mktemp("examples")
    lsp_client.root = root
    await lsp_client.initialize_session(types.InitializeParams(capabilities=capabilities(), root_uri=uri(root), initialization_options={"debounce": 10}))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("code, index, unsafe", list(_examples()))
async def test_each_quick_fix_applied_gives_what_fix_gives(examples_client, tmp_path, run_devlint, code, index, unsafe):
    """Every quick fix offered for one version of the example's modules, applied, then the
    next version's (a fix can make another finding go away, as in --fix's rounds), until
    none is offered. A fix that threads a device across modules edits each of them."""
    client = examples_client
    modules = _modules(catalog.get(code).examples[index].bad)
    project = client.root / f"{code}_{index}_{unsafe}"
    for directory in (project, tmp_path):
        directory.mkdir(exist_ok=True)
        (directory / "pyproject.toml").write_text("[tool.devlint]\n")
        for name, text in modules.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)
    docs = {open_file(client, project / name): name for name in modules}
    texts = {doc: modules[name] for doc, name in docs.items()}
    versions = dict.fromkeys(docs, 1)
    for doc in docs:
        await published(client, doc, version=1)
    applied = 0
    while True:
        await quiet(client, 0.8)  # the index-driven checks of the other modules too
        offered = []
        for doc in docs:
            for diagnostic in client.diagnostics.get(doc, []):
                fixes = _quick_fixes(await code_actions(client, doc, diagnostic.range), unsafe)
                assert all(a.title.startswith("devlint (unsafe fix): ") != a.is_preferred for a in fixes)
                offered.extend(a for a in fixes if a.diagnostics[0] == diagnostic)
        if not offered:
            break
        changed = apply(_together(offered), texts)
        since, applied = len(client.published), applied + len(offered)
        for doc in docs:
            if changed[doc] != texts[doc]:
                versions[doc] += 1
                replace_all(client, doc, versions[doc], changed[doc])
                await published(client, doc, since, version=versions[doc])
        texts = changed
    for doc in docs:
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(doc)))
    assert applied
    run_devlint("check", ".", "--fix", *(["--unsafe-fixes"] if unsafe else []), "--no-cache", cwd=tmp_path)
    assert {name: texts[doc] for doc, name in docs.items()} == {name: (tmp_path / name).read_text() for name in modules}


@pytest.mark.asyncio
@pytest.mark.parametrize("unsafe", [False, True], ids=["fix", "unsafe-fixes"])
async def test_fix_all_in_a_file_gives_what_fix_gives(tmp_path, run_devlint, unsafe):
    root, fixed = tmp_path / "project", tmp_path / "fixed"
    shutil.copytree(FIXTURES, root)
    shutil.copytree(FIXTURES, fixed)
    run_devlint("check", ".", "--fix", *(["--unsafe-fixes"] if unsafe else []), "--no-cache", cwd=fixed)
    client = await start(root)
    try:
        changed = 0
        for path in sorted((root / "talking_head").glob("*.py")):
            doc = open_file(client, path)
            await published(client, doc, version=1)
            found = {a.kind: a for a in await code_actions(client, doc, WHOLE, only=[FIX_ALL, FIX_ALL_UNSAFE])}
            # the unsafe one is offered only where there is an unsafe fix; it applies the safe ones too
            action = found.get(FIX_ALL_UNSAFE) if unsafe else None
            action = action or found.get(FIX_ALL)
            text = path.read_text()
            if action:
                assert action.edit is None  # resolved on demand: VS Code resolves edits
                action = await client.code_action_resolve_async(action)
                text = apply(action.edit, {doc: text})[doc]
                changed += 1
            assert text == (fixed / path.relative_to(root)).read_text(), path.name
        assert changed >= 3
    finally:
        await client.shutdown_session()


@pytest.mark.asyncio
async def test_noqa_silences_the_finding_and_joins_an_existing_list(client, project, run_devlint):
    text = "import torch\n\n\ndef f(x, path):\n    return x.cuda(), torch.load(path)  # noqa: DL999\n"
    path = project / "m.py"
    path.write_text(text)
    doc = open_file(client, path)
    diagnostics = await published(client, doc, version=1)
    assert sorted(d.code for d in diagnostics) == ["DL001", "DL005"]
    load = next(d for d in diagnostics if d.code == "DL005")
    (noqa,) = [a for a in await code_actions(client, doc, load.range) if "# noqa" in a.title and "DL005" in a.title]
    text = apply(noqa.edit, {doc: text})[doc]
    assert text.splitlines()[4].endswith("# noqa: DL999, DL005")
    replace_all(client, doc, 2, text)
    (left,) = await published(client, doc, version=2)
    assert left.code == "DL001"
    (noqa,) = [a for a in await code_actions(client, doc, left.range) if "# noqa" in a.title]
    text = apply(noqa.edit, {doc: text})[doc]
    replace_all(client, doc, 3, text)
    assert await published(client, doc, version=3) == []
    path.write_text(text)
    _, out, _ = run_devlint("check", "m.py", "--no-cache", cwd=project)
    assert "No device leaks found" in out


@pytest.mark.asyncio
async def test_without_resolve_or_document_changes_the_edits_come_inline(project, run_devlint):
    caps = capabilities()
    code_action = attrs.evolve(caps.text_document.code_action, resolve_support=None)
    workspace = attrs.evolve(caps.workspace, workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=False))
    caps = attrs.evolve(caps, text_document=attrs.evolve(caps.text_document, code_action=code_action), workspace=workspace)
    text = "import torch\n\n\ndef f(x, device):\n    return x.cuda() + torch.zeros(2).cuda()\n"
    path = project / "m.py"
    path.write_text(text)
    client = await start(project, caps)
    try:
        doc = open_file(client, path)
        await published(client, doc, version=1)
        (action,) = await code_actions(client, doc, WHOLE, only=[FIX_ALL])
        assert action.edit.document_changes is None and list(action.edit.changes) == [doc]
        fixed = apply(action.edit, {doc: text})[doc]
    finally:
        await client.shutdown_session()
    run_devlint("check", "m.py", "--fix", "--no-cache", cwd=project)
    assert fixed == path.read_text()


def test_an_edit_naming_another_file_edits_that_file(tmp_path):
    """Multi-file fixes carry `filename` on their edits: each goes to its own document."""
    main, other = tmp_path / "main.py", tmp_path / "lib.py"
    texts = {uri(main): "run(x)\n", uri(other): "def run(x):\n    pass\n"}
    codec = PositionCodec()
    editor = actions_module.Editor(
        lines=lambda u: Lines(texts[u], codec),
        version=lambda u: 3 if u == uri(main) else None,
        uri_of=lambda name: uri(tmp_path / name),
        document_changes=True,
    )
    view = View(uri(main), 3, main, texts[uri(main)], {uri(main): texts[uri(main)]})
    edits = [
        SimpleNamespace(content=", device", location=Location(1, 6), end_location=Location(1, 6), filename=None),
        SimpleNamespace(content=", device", location=Location(1, 10), end_location=Location(1, 10), filename="lib.py"),
    ]
    placed = actions_module._text_edits(edits, view, editor)
    workspace_edit = actions_module._workspace_edit(placed, editor)
    assert [(c.text_document.uri, c.text_document.version) for c in workspace_edit.document_changes] == [(uri(main), 3), (uri(other), None)]
    assert apply(workspace_edit, texts) == {uri(main): "run(x, device)\n", uri(other): "def run(x, device):\n    pass\n"}


GRIDS = "import torch\n\n\ndef make_grid(size):\n    return torch.zeros(size, size).cuda()\n"
RENDER = "from grids import make_grid\n\n\ndef render(frames, device):\n    return make_grid(frames.shape[-1])\n"


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["quick-fix", "fix-all"])
async def test_a_device_threaded_through_files_edits_each_file(tmp_path, run_devlint, how):
    """A structural fix (a `device` parameter added, and passed by the caller in another
    file) is one action editing both documents, as `--fix --unsafe-fixes` edits both files."""
    root, fixed = tmp_path / "project", tmp_path / "fixed"
    for directory in (root, fixed):
        directory.mkdir()
        (directory / "pyproject.toml").write_text("[tool.devlint]\n")
        (directory / "grids.py").write_text(GRIDS)
        (directory / "render.py").write_text(RENDER)
    run_devlint("check", ".", "--fix", "--unsafe-fixes", "--no-cache", cwd=fixed)
    client = await start(root)
    try:
        doc = open_file(client, root / "grids.py")
        (diagnostic,) = await published(client, doc, version=1)
        if how == "quick-fix":
            (action,) = _quick_fixes(await code_actions(client, doc, diagnostic.range), unsafe=True)
            assert action.title.startswith("devlint (unsafe fix): Add `device=None` to `make_grid`")
        else:
            (action,) = await code_actions(client, doc, WHOLE, only=[FIX_ALL_UNSAFE])
            action = await client.code_action_resolve_async(action)
        other = uri(root / "render.py")
        assert {c.text_document.uri for c in action.edit.document_changes} == {doc, other}
        texts = apply(action.edit, {doc: GRIDS, other: RENDER})
    finally:
        await client.shutdown_session()
    assert texts == {doc: (fixed / "grids.py").read_text(), other: (fixed / "render.py").read_text()}
    assert texts[other] != RENDER


@pytest.mark.asyncio
async def test_fixes_for_the_diagnostics_the_client_sends_along(client, project):
    """Neovim asks at the cursor (before the diagnostic on its line) and sends the line's diagnostics."""
    path = project / "m.py"
    path.write_text("import torch\n\n\ndef f(model, device):\n    model = model.cuda()\n")
    doc = open_file(client, path)
    (diagnostic,) = await published(client, doc, version=1)
    cursor = types.Range(types.Position(4, 4), types.Position(4, 4))
    ask = lambda sent: client.text_document_code_action_async(types.CodeActionParams(types.TextDocumentIdentifier(doc), cursor, types.CodeActionContext(sent)))
    assert [a.title for a in _quick_fixes(await ask([diagnostic]), unsafe=False)] == ["devlint: Replace `.cuda()` with `.to(device)`"]
    assert _quick_fixes(await ask([]) or [], unsafe=True) == []
