"""Diagnostics from the real server over stdio: what `devlint check` finds, as the user types."""

import json
import shutil
from pathlib import Path

import pytest
from lsprotocol import types

from devlint import catalog

from .conftest import as_range, changed_on_disk, check_json, edit, open_file, published, quiet, start

pytestmark = pytest.mark.asyncio
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LEAK = "import torch\n\n\ndef load(path, device):\n    return torch.load(path)\n"
DEFINES = 'import torch\n\n\ndef make_grid(size, device="cuda"):\n    return torch.zeros(size, device=device)\n'
CALLS = "from grids import make_grid\n\n\ndef render(size):\n    return make_grid(size)\n"


def _codes(diagnostics):
    return sorted(d.code for d in diagnostics)


def _seen(diagnostics):
    """What a diagnostic says, without what the server adds to the finding's message
    (the runtime's evidence, the fix, notes)."""
    return sorted(
        (d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character, d.message.splitlines()[0].split("  [")[0])
        for d in diagnostics
    )


def _expected(findings):
    out = []
    for f in findings:
        r = as_range(f)
        out.append((f["code"], r.start.line, r.start.character, r.end.line, r.end.character, f["message"]))
    return sorted(out)


async def test_open_change_close(client, project):
    path = project / "loader.py"
    path.write_text(LEAK)
    doc = open_file(client, path)
    (diagnostic,) = await published(client, doc, version=1)
    assert diagnostic.code == "DL005" and diagnostic.source == "devlint"
    assert diagnostic.code_description.href == catalog.get("DL005").url
    assert diagnostic.severity == types.DiagnosticSeverity.Warning
    assert diagnostic.range == types.Range(types.Position(4, 11), types.Position(4, 27))
    assert "fix (unsafe): " in diagnostic.message  # the suggestion travels with the message

    edit(client, doc, 2, (4, 26), (4, 26), ", map_location=device")
    assert await published(client, doc, version=2) == []

    since = len(client.published)
    edit(client, doc, 3, (4, 4), (4, 4), "x = torch.zeros(3).cuda()\n    ")
    assert _codes(await published(client, doc, since, version=3)) == ["DL011"]

    since = len(client.published)
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(doc)))
    assert await published(client, doc, since) == []  # closing clears what the editor shows


async def test_diagnostics_equal_devlint_check_on_the_example_project(tmp_path, run_devlint):
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, root)
    expected = check_json(run_devlint, ".", cwd=root)
    client = await start(root)
    try:
        files = sorted(path for package in ("talking_head", "hf_pipeline") for path in (root / package).rglob("*.py"))
        docs = {open_file(client, path): path for path in files}
        for doc, path in docs.items():
            seen = await published(client, doc, version=1)
            mine = [f for f in expected if Path(f["filename"]) == path]
            assert _seen(seen) == _expected(mine), path.name
            assert all(d.code_description.href == catalog.get(d.code).url for d in seen)
        assert sum(len(client.diagnostics[d]) for d in docs) == len(expected)
    finally:
        await client.shutdown_session()


async def test_columns_are_utf16_code_units(client, project, run_devlint):
    text = "import torch\n\n\ndef f(x):\n    s = '😀é'; return x.cuda()\n"
    path = project / "wide.py"
    path.write_text(text)
    (diagnostic,) = await published(client, open_file(client, path), version=1)
    (finding,) = check_json(run_devlint, "wide.py", cwd=project)
    column = finding["location"]["column"] - 1  # characters; the emoji is two UTF-16 units
    assert diagnostic.range.start == types.Position(4, column + 1)


async def test_a_form_feed_is_not_a_line_break(client, project, run_devlint):
    text = "import torch\n\x0c\n\ndef f(x):  \x0c\n    return x\n"
    path = project / "paged.py"
    path.write_text(text)
    doc = open_file(client, path)
    assert await published(client, doc, version=1) == []
    edit(client, doc, 2, (4, 12), (4, 12), ".cuda()")  # line 4 counted as LSP counts lines
    (diagnostic,) = await published(client, doc, version=2)
    path.write_text(text.replace("return x\n", "return x.cuda()\n"))
    (finding,) = check_json(run_devlint, "paged.py", cwd=project)
    assert (diagnostic.code, diagnostic.range) == ("DL001", as_range(finding))


async def test_a_definition_edited_in_another_file_updates_its_callers(client, project):
    (project / "grids.py").write_text(DEFINES)
    (project / "render.py").write_text(CALLS)
    caller = open_file(client, project / "render.py")
    (diagnostic,) = await published(client, caller, version=1)
    assert diagnostic.code == "DL012" and "make_grid" in diagnostic.message

    definition = open_file(client, project / "grids.py")
    await published(client, definition, version=1)
    await quiet(client)
    since = len(client.published)
    edit(client, definition, 2, (3, 27), (3, 33), "None")  # device="cuda" -> device=None
    assert await published(client, caller, since) == []  # the caller was checked again, unasked

    since = len(client.published)
    edit(client, definition, 3, (3, 27), (3, 31), '"cuda"')
    assert _codes(await published(client, caller, since)) == ["DL012"]


async def test_a_definition_changed_on_disk_updates_its_callers(client, project):
    (project / "grids.py").write_text(DEFINES)
    (project / "render.py").write_text(CALLS)
    caller = open_file(client, project / "render.py")
    assert _codes(await published(client, caller, version=1)) == ["DL012"]
    assert any(r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES for r in client.registrations)

    (project / "grids.py").write_text(DEFINES.replace('device="cuda"', "device"))
    since = changed_on_disk(client, project / "grids.py")
    assert await published(client, caller, since) == []


ENCODER = (
    "import torch\n\n\nclass Embedder(torch.nn.Module):\n"
    '    def __init__(self, version="clip", device="cuda"):\n'
    "        super().__init__()\n        self.device = device\n\n"
    "    def forward(self, tokens):\n        return tokens.to(self.device)\n"
)
CONFIG = "model:\n  target: encoder.Embedder\n  params:\n    version: clip\n"


async def test_a_yaml_config_that_builds_a_class_is_read_and_followed_on_disk(client, project):
    """As `devlint check` reads it (static/configs.py): the config leaves `device` out, then passes it."""
    (project / "encoder.py").write_text(ENCODER)
    (project / "v1.yaml").write_text(CONFIG)
    doc = open_file(client, project / "encoder.py")
    (diagnostic,) = await published(client, doc, version=1)
    assert diagnostic.code == "DL012" and "v1.yaml:2" in diagnostic.message

    (project / "v1.yaml").write_text(CONFIG.replace("version: clip", "device: cuda:1"))
    since = changed_on_disk(client, project / "v1.yaml")
    assert await published(client, doc, since) == []


async def test_configuration_changes_are_honoured(client, project):
    path = project / "loader.py"
    path.write_text(LEAK.replace("return torch.load(path)", "return torch.load(path).cuda()"))
    doc = open_file(client, path)
    assert _codes(await published(client, doc, version=1)) == ["DL001", "DL005"]

    (project / "pyproject.toml").write_text('[tool.devlint]\nignore = ["DL005"]\n')
    since = changed_on_disk(client, project / "pyproject.toml")
    assert _codes(await published(client, doc, since)) == ["DL001"]

    # noticed on the next check even when the editor sends no file events
    (project / "pyproject.toml").write_text('[tool.devlint.per-file-ignores]\n"loader.py" = ["DL001"]\n')
    edit(client, doc, 2, (0, 0), (0, 0), "# edited\n")
    assert _codes(await published(client, doc, version=2)) == ["DL005"]


async def test_a_broken_configuration_is_said_once_and_the_last_good_one_stays(client, project):
    (project / "pyproject.toml").write_text('[tool.devlint]\nignore = ["DL005"]\n')
    path = project / "loader.py"
    path.write_text(LEAK.replace("return torch.load(path)", "return torch.load(path).cuda()"))
    doc = open_file(client, path)
    assert _codes(await published(client, doc, version=1)) == ["DL001"]

    (project / "pyproject.toml").write_text('[tool.devlint]\nselect = ["DL9999"]\n')
    edit(client, doc, 2, (0, 0), (0, 0), "# edited\n")
    assert _codes(await published(client, doc, version=2)) == ["DL001"]
    edit(client, doc, 3, (0, 0), (0, 0), "# again\n")
    await published(client, doc, version=3)
    (message,) = [m for m in client.messages if "DL9999" in m.message]
    assert "unknown rule selector" in message.message and "\n" not in message.message


async def test_excluded_files_get_no_diagnostics(client, project):
    (project / "pyproject.toml").write_text('[tool.devlint]\nextend-exclude = ["vendored"]\n')
    (project / "vendored").mkdir()
    path = project / "vendored" / "lib.py"
    path.write_text(LEAK)
    assert await published(client, open_file(client, path), version=1) == []


async def test_runtime_report_in_config_shows_confirmed_and_runtime_only_findings(client, project, run_devlint):
    text = (
        "import torch\nfrom facelibx import Helper\n\n\n"
        "def prepare(frames, device):\n    helper = Helper(size=64)\n    weights = torch.load('w.pth')\n    return helper, weights\n"
    )
    (project / "app.py").write_text(text)
    leak = {"message": "seen", "filename": str(project / "app.py"), "device": "cuda:0", "kind": "allocation",
            "count": 2, "bytes": 4096, "function": "prepare", "stack": [], "suggestion": "pass `device=device`"}
    report = {"version": 1, "command": "app.py", "allowed": ["cuda:1"], "gpus": [], "leaks": [
        {**leak, "code": "DL005", "line": 7, "source_line": "    weights = torch.load('w.pth')"},
        {**leak, "code": "DL012", "line": 6, "source_line": "    helper = Helper(size=64)", "origin": "/lib/facelibx.py:2 in Helper.__init__"},
    ]}
    (project / "report.json").write_text(json.dumps(report))
    (project / "pyproject.toml").write_text('[tool.devlint]\nruntime-report = "report.json"\n')
    diagnostics = await published(client, open_file(client, project / "app.py"), version=1)
    assert _seen(diagnostics) == _expected(check_json(run_devlint, "app.py", cwd=project))
    by_code = {d.code: d for d in diagnostics}
    assert "[confirmed at runtime: 2x on cuda:0]" in by_code["DL005"].message
    assert by_code["DL005"].severity == types.DiagnosticSeverity.Error
    assert "seen at runtime only" in by_code["DL012"].message


async def test_a_burst_of_keystrokes_ends_on_the_last_text(client, project):
    path = project / "loader.py"
    path.write_text(LEAK)
    doc = open_file(client, path)
    await published(client, doc, version=1)
    since = len(client.published)
    for version in range(2, 32):  # 30 keystrokes sent without waiting, as fast typing arrives
        edit(client, doc, version, (5, version - 2), (5, version - 2), "#")
    assert _codes(await published(client, doc, since, version=31)) == ["DL005"]
    await quiet(client)
    versions = [p.version for p in client.published[since:] if p.uri == doc]
    assert versions == sorted(versions) and versions[-1] == 31  # a result for an older text is never shown
