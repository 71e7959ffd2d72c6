"""Keystroke-to-diagnostics latency of `devlint server` on a 2,000-line file.

Starts the real server over stdio, opens a generated 2,000-line module (model code with
leaks of several rules, and definitions whose `device` defaults to CUDA, so every edit
also re-collects the file's project facts), then types one character at a time into a
function in the middle of the file. For each keystroke (a `textDocument/didChange` of
one character, typing a comment at the end of a line) it measures the time until the
`publishDiagnostics` of that version arrives: debounce, check and transport included. Keystrokes are spaced out (--gap) so
each is measured alone, as a pause in typing is.

    python benchmarks/server_latency.py [--keystrokes 200] [--gap 0.15] [--debounce MS] [--file PATH]

--file times a real module instead (typing at the end of a `return` line in its middle).

Needs the `server` extra (pygls). Prints the median and the 90th percentile.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BLOCK = '''\


class Renderer{n}(torch.nn.Module):
    """Block {n}: a renderer with a coordinate grid, a checkpoint and a timing helper."""

    def __init__(self, size, device="cuda"):
        super().__init__()
        self.size = size
        self.device = device
        self.proj = torch.nn.Linear(size, size)

    def grid(self, batch):
        xs = torch.arange(self.size, dtype=torch.float32)
        ys = torch.arange(self.size, dtype=torch.float32)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="ij"), dim=-1)
        return grid.unsqueeze(0).expand(batch, -1, -1, -1).cuda()

    def load(self, path):
        state = torch.load(path)
        self.load_state_dict(state)
        return self

    def forward(self, frames):
        weights = self.proj(frames.to(self.device))
        return weights * 2


def run_block_{n}(frames, device):
    renderer = Renderer{n}(frames.shape[-1])
    torch.cuda.synchronize()
    return renderer(frames.to(device))
'''
HEADER = '"""A generated 2,000-line module for the latency benchmark."""\n\nimport torch\n'


def module(lines: int) -> str:
    text, n = HEADER, 0
    while text.count("\n") + BLOCK.count("\n") <= lines:
        text += BLOCK.format(n=n)
        n += 1
    return text + "\n" * (lines - text.count("\n"))


class Client:
    """A minimal LSP client over the server's stdin/stdout."""

    def __init__(self, command: list[str], cwd: Path):
        self.process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.incoming: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            self.incoming.put((time.perf_counter(), json.loads(stream.read(length))))

    def send(self, method: str, params, request: bool = False) -> int | None:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.process.stdin.flush()
        return message.get("id")

    def wait(self, match, timeout: float = 60.0) -> tuple[float, dict]:
        deadline = time.perf_counter() + timeout
        while True:
            arrived, message = self.incoming.get(timeout=max(0.01, deadline - time.perf_counter()))
            if message.get("method") == "client/registerCapability":
                continue
            if match(message):
                return arrived, message


def torch_module() -> Path:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed: it supplies the real module (or pass --file PATH)")
    return Path(list(spec.submodule_search_locations)[0]) / "cuda" / "__init__.py"


def measure(name: str, text: str, args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text("[tool.devlint]\n")
        path = root / "model.py"
        path.write_text(text)
        uri = path.as_uri()
        client = Client([sys.executable, "-m", "devlint", "server"], cwd=root)
        options = {"debounce": args.debounce} if args.debounce is not None else None
        request = client.send("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": {}, "initializationOptions": options}, request=True)
        client.wait(lambda m: m.get("id") == request)
        client.send("initialized", {})
        start = time.perf_counter()
        client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
        arrived, opened = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == 1)
        first = arrived - start
        findings = len(opened["params"]["diagnostics"])

        lines = text.split("\n")
        row = next(i for i in range(len(lines) // 2, len(lines)) if lines[i].strip().startswith("return ") and not lines[i].endswith("\\"))
        column = len(lines[row])
        typed = ("  # scale the projection: " + "the weights are doubled before blending " * 10)[: args.keystrokes]
        latencies = []
        for version, char in enumerate(typed, start=2):
            change = {"range": {"start": {"line": row, "character": column}, "end": {"line": row, "character": column}}, "text": char}
            sent = time.perf_counter()
            client.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]})
            arrived, _ = client.wait(lambda m, v=version: m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == v)
            latencies.append((arrived - sent) * 1000)
            column += 1
            time.sleep(args.gap)
        shutdown = client.send("shutdown", None, request=True)
        client.wait(lambda m: m.get("id") == shutdown)
        client.send("exit", None)
        client.process.wait(timeout=10)

    latencies.sort()
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    print(f"{name}: {text.count(chr(10))} lines, {findings} findings when opened (first diagnostics after {first * 1000:.0f} ms)")
    print(f"  keystroke -> diagnostics, {len(latencies)} keystrokes: median {statistics.median(latencies):.1f} ms, p90 {p90:.1f} ms, max {latencies[-1]:.1f} ms")
    print(f"  load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keystrokes", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.15, help="seconds between keystrokes")
    parser.add_argument("--debounce", type=float, default=None, help="the server's debounce in ms (default: its own)")
    parser.add_argument("--file", type=Path, default=None, help="time this module only")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.file:
        measure(str(args.file), args.file.read_text(), args)
        return
    real = torch_module()
    measure(f"real ({real})", real.read_text(), args)
    measure("dense (generated)", module(2000), args)


if __name__ == "__main__":
    main()
