"""Bad input never ends the session: a syntax error mid-edit, a crashing check, requests
the server does not know; and the server leaves cleanly when told to or when stdin closes."""

import json
import subprocess
import sys
import textwrap

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcMethodNotFound

from .conftest import SERVER, edit, open_file, published

TEXT = (
    "import torch\n"
    "\n"
    "\n"
    "def load(path, device):\n"
    "    weights = torch.load(path)\n"
    "    return weights\n"
    "\n"
    "\n"
    "def move(x):\n"
    "    return x.cuda()\n"
)


def _where(diagnostics):
    return sorted((d.code, d.range.start.line) for d in diagnostics)


@pytest.mark.asyncio
async def test_a_syntax_error_mid_edit_keeps_the_last_good_findings_in_place(client, project):
    path = project / "m.py"
    path.write_text(TEXT)
    doc = open_file(client, path)
    assert _where(await published(client, doc, version=1)) == [("DL001", 9), ("DL005", 4)]

    edit(client, doc, 2, (5, 18), (5, 18), " + (")  # `return weights + (`: unclosed
    found = await published(client, doc, version=2)
    assert _where(found) == [("DL001", 9), ("DL005", 4), ("DL901", 5)]
    assert "syntax error" in next(d.message for d in found if d.code == "DL901")

    edit(client, doc, 3, (2, 0), (2, 0), "\n\n")  # two lines above both: they move with the text
    assert _where(await published(client, doc, version=3)) == [("DL001", 11), ("DL005", 6), ("DL901", 7)]

    edit(client, doc, 4, (11, 13), (11, 19), "to('cpu')")  # an edit that touches one drops it
    assert _where(await published(client, doc, version=4)) == [("DL005", 6), ("DL901", 7)]

    edit(client, doc, 5, (7, 18), (7, 22), "")  # parses again: a fresh check
    assert _where(await published(client, doc, version=5)) == [("DL005", 6)]


@pytest.mark.asyncio
async def test_a_crashing_check_is_logged_and_the_session_goes_on(project):
    """The server with a check that raises on one file: the client hears of it, other files still get checked."""
    boom = textwrap.dedent(
        """
        import sys
        from devlint.server import checking
        real = checking.check_text
        def check_text(text, *args, **kwargs):
            if "BOOM" in text:
                raise RuntimeError("a check blew up")
            return real(text, *args, **kwargs)
        checking.check_text = check_text
        from devlint.server.protocol import serve
        serve()
        """
    )
    from pytest_lsp import ClientServerConfig

    from .conftest import capabilities, recording_client, uri

    client = await ClientServerConfig([sys.executable, "-c", boom], client_factory=recording_client).start()
    await client.initialize_session(types.InitializeParams(capabilities=capabilities(), root_uri=uri(project)))
    try:
        (project / "bad.py").write_text("BOOM = 1\n")
        (project / "good.py").write_text(TEXT)
        open_file(client, project / "bad.py")
        good = open_file(client, project / "good.py")
        assert _where(await published(client, good, version=1)) == [("DL001", 9), ("DL005", 4)]
        (logged,) = [m for m in client.log_messages if "a check blew up" in m.message]
        assert logged.type == types.MessageType.Error and "internal error (RuntimeError" in logged.message
    finally:
        await client.shutdown_session()


@pytest.mark.asyncio
async def test_unknown_requests_get_method_not_found(client):
    with pytest.raises(JsonRpcMethodNotFound) as error:
        await client.protocol.send_request_async("devlint/nonsense", {})
    assert error.value.code == -32601
    # and the session goes on
    assert await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier("file:///nowhere.py"), types.Position(0, 0))
    ) is None


def _message(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _initialize(process, root) -> None:
    params = {"processId": None, "rootUri": None, "capabilities": {}}
    process.stdin.write(_message({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}))
    process.stdin.write(_message({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    process.stdin.flush()


@pytest.mark.parametrize("shutdown, code", [(True, 0), (False, 1)], ids=["shutdown-then-exit", "exit-alone"])
def test_exit_ends_the_process_with_the_protocols_code(tmp_path, shutdown, code):
    process = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    _initialize(process, tmp_path)
    if shutdown:
        process.stdin.write(_message({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
    process.stdin.write(_message({"jsonrpc": "2.0", "method": "exit"}))
    process.stdin.flush()
    assert process.wait(timeout=20) == code
    assert b"Traceback" not in process.stderr.read()


def _read(process) -> dict:
    length = None
    while True:
        header = process.stdout.readline()
        if header.lower().startswith(b"content-length:"):
            length = int(header.split(b":")[1])
        if header in (b"\r\n", b""):
            break
    return json.loads(process.stdout.read(length))


def test_a_request_with_params_that_do_not_fit_gets_invalid_params(tmp_path):
    process = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    _initialize(process, tmp_path)
    process.stdin.write(_message({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {"textDocument": {}}}))
    process.stdin.write(_message({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}))
    process.stdin.flush()
    answers = {}
    while 3 not in answers:
        message = _read(process)
        assert message.get("method") != "window/showMessage", message  # no pop-up for it
        if "id" in message:
            answers[message["id"]] = message
    assert answers[2]["error"]["code"] == -32602
    process.stdin.write(_message({"jsonrpc": "2.0", "method": "exit"}))
    process.stdin.flush()
    assert process.wait(timeout=20) == 0
    assert b"Traceback" not in process.stderr.read()


def test_closing_stdin_ends_the_process(tmp_path):
    process = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    _initialize(process, tmp_path)
    process.stdin.close()
    assert process.wait(timeout=20) == 0
    assert b"Traceback" not in process.stderr.read()
