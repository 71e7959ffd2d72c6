"""The language server and the flake8 plugin never need torch: both run with it blocked."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from .conftest import capabilities, open_file, published, recording_client, uri

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BLOCK_TORCH = textwrap.dedent(
    """
    import sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, NoTorch())
    """
)


@pytest.mark.asyncio
async def test_server_works_with_torch_blocked(project):
    command = BLOCK_TORCH + "from devlint.cli import main\nsys.argv = ['devlint', 'server']\nmain()\n"
    client = await ClientServerConfig([sys.executable, "-c", command], client_factory=recording_client).start()
    await client.initialize_session(types.InitializeParams(capabilities=capabilities(), root_uri=uri(project)))
    try:
        path = project / "m.py"
        path.write_text("import torch\n\n\ndef f(x, device):\n    return x.cuda()\n")
        doc = open_file(client, path)
        (diagnostic,) = await published(client, doc, version=1)
        assert diagnostic.code == "DL001"
        context = types.CodeActionContext([diagnostic])
        actions = await client.text_document_code_action_async(types.CodeActionParams(types.TextDocumentIdentifier(doc), diagnostic.range, context))
        assert any(a.title == "devlint: Replace `.cuda()` with `.to(device)`" for a in actions), [a.title for a in actions]
    finally:
        await client.shutdown_session()


def test_flake8_plugin_works_with_torch_blocked():
    command = BLOCK_TORCH + "from flake8.main.cli import main\nsys.exit(main(['--select', 'DL', '.']))\n"
    result = subprocess.run([sys.executable, "-c", command], cwd=FIXTURES, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == len((FIXTURES / "expected_findings.txt").read_text().splitlines())
