"""A run whose inputs have not changed gives the last run's findings without the stages
(check/replay.py); any change to what they came from goes through the stages, and a
cached run always prints what a run without the cache prints."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from devlint.check import lint, replay

HELPERS = '''\
import torch


def load_weights(path):
    return torch.load(path)


def enhance(images):
    return torch.zeros(3).cuda() + images
'''
PIPELINE = '''\
from helpers import enhance


class Job:
    def __init__(self, device):
        self.device = device

    def run(self, images):
        return enhance(images)
'''


@pytest.fixture
def trusted_now(monkeypatch):
    """Stamps of files written a moment ago are trusted (as they are 3 s later, the
    default): the tests that edit a file sleep past the file system clock's tick first."""
    monkeypatch.setattr(replay, "RACY_NS", -10_000_000_000)


@pytest.fixture
def stages_must_not_run(monkeypatch):
    """Within this context, any run that reads and checks the files fails the test."""

    def forbid():
        def ran(*args, **kwargs):
            raise AssertionError("nothing changed, yet the files were read and checked again")

        monkeypatch.setattr(lint, "lint_works", ran)

    return forbid


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def _same_as_cold(run_devlint, root: Path, *args) -> tuple[int, str, str]:
    warm = run_devlint("check", ".", *args, cwd=root)
    cold = run_devlint("check", ".", "--no-cache", *args, cwd=root)
    assert warm == cold
    return warm


def _record(root: Path) -> dict:
    """The record's payload (after its first line, the payload's content key)."""
    return json.loads((root / ".devlint_cache" / "last-run.json").read_bytes().partition(b"\n")[2])


def _edit(path: Path, old: str, new: str) -> None:
    time.sleep(0.05)  # past the tick of the file system's clock
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_an_unchanged_tree_is_replayed_without_the_stages(run_devlint, tmp_path, stages_must_not_run, fmt):
    root = _tree(tmp_path)
    first = _same_as_cold(run_devlint, root, "--output-format", fmt)
    assert first[0] == 1 and "helpers.py" in first[1]
    assert (root / ".devlint_cache" / "last-run.json").is_file()
    if fmt in ("json", "sarif"):  # the threaded fix's edits are made from the files' text: the stages run
        assert run_devlint("check", ".", "--output-format", fmt, cwd=root) == first
        (root / "helpers.py").write_text(HELPERS.replace("torch.zeros(3).cuda() + images", "images"))
        first = _same_as_cold(run_devlint, root, "--output-format", fmt)  # no threaded fix left
    stages_must_not_run()
    assert run_devlint("check", ".", "--output-format", fmt, cwd=root) == first


def test_a_fix_after_a_recorded_run_still_fixes(run_devlint, tmp_path):
    root = _tree(tmp_path)
    _same_as_cold(run_devlint, root)
    code, _, _ = run_devlint("check", ".", "--fix", "--unsafe-fixes", cwd=root)
    assert "map_location" in (root / "helpers.py").read_text()
    _same_as_cold(run_devlint, root)


def test_edits_new_and_removed_files_are_seen(run_devlint, tmp_path, trusted_now):
    root = _tree(tmp_path)
    _same_as_cold(run_devlint, root)
    helpers = root / "helpers.py"
    before = os.stat(helpers)
    # The same size, and the modification time put back: only the change time tells.
    _edit(helpers, "torch.load(path)", "torch.save(path)")
    os.utime(helpers, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(helpers).st_size == before.st_size
    edited = _same_as_cold(run_devlint, root)
    assert "DL005" not in edited[1]
    (root / "extra.py").write_text("import torch\n\nx = torch.ones(2).cuda()\n")
    assert "extra.py" in _same_as_cold(run_devlint, root)[1]
    (root / "extra.py").unlink()
    assert _same_as_cold(run_devlint, root) == edited


def test_a_touched_file_is_hashed_and_still_replayed(run_devlint, tmp_path, trusted_now, stages_must_not_run):
    root = _tree(tmp_path)
    first = _same_as_cold(run_devlint, root)
    recorded = _record(root)
    time.sleep(0.05)
    os.utime(root / "helpers.py")  # `touch`: a new stamp, the same content
    stages_must_not_run()
    assert run_devlint("check", ".", cwd=root) == first
    again = _record(root)
    stamp = {Path(entry[0]).name: entry[4] for entry in again["files"]}
    assert stamp["helpers.py"] != {Path(entry[0]).name: entry[4] for entry in recorded["files"]}["helpers.py"]  # the new one, kept
    assert stamp["helpers.py"][2] == os.stat(root / "helpers.py").st_ctime_ns


def test_files_written_just_before_a_run_are_hashed_by_the_next(run_devlint, tmp_path):
    """Within RACY_NS of the run's start a stamp is not trusted: a second write in the same
    tick of the clock, of the same size, would keep it."""
    root = _tree(tmp_path)
    _same_as_cold(run_devlint, root)
    assert [entry[4] for entry in _record(root)["files"]] == [None, None]


def _library(site: Path, default: str) -> None:
    package = site / "gpulib"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f"import torch\n\n\ndef build(size, device={default!r}):\n    return torch.zeros(size, device=device)\n")
    info = site / "gpulib-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gpulib\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("gpulib\n")


def test_a_library_edited_in_place_is_read_again(run_devlint, tmp_path, trusted_now):
    venv = tmp_path / "venv"
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    _library(site, "cuda")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    root = tmp_path / "proj"
    root.mkdir()
    (root / "main.py").write_text("import gpulib\n\n\ndef main():\n    return gpulib.build(3)\n")
    first = _same_as_cold(run_devlint, root, "--python", venv)
    assert "DL012" in first[1]
    time.sleep(0.05)
    _library(site, "cpu")  # the same version, its source changed (an editable install)
    assert "DL012" not in _same_as_cold(run_devlint, root, "--python", venv)[1]


# A `load()` extension whose op DL027 judges, and its kernel without and with a device guard.
_EXTENSION_DATA = Path(__file__).resolve().parents[1] / "data" / "extension"
EXTENSION = (_EXTENSION_DATA / "ops.py").read_text()
UNGUARDED_CU = (_EXTENSION_DATA / "blur_kernel_unguarded.cu").read_text()
GUARDED_CU = (_EXTENSION_DATA / "blur_kernel_guarded.cu").read_text()
GUARDED_CU = "torch::Tensor blur_cuda(torch::Tensor x) {\n  const at::cuda::OptionalCUDAGuard guard(device_of(x));\n  return x;\n}\n"


def test_an_extension_source_is_part_of_the_record(run_devlint, tmp_path, trusted_now):
    (tmp_path / "ops.py").write_text(EXTENSION)
    (tmp_path / "blur.cpp").write_text("#include <torch/extension.h>\n")
    kernel = tmp_path / "blur_kernel.cu"
    seen = []
    for text in (UNGUARDED_CU, GUARDED_CU, UNGUARDED_CU):
        time.sleep(0.05)
        kernel.write_text(text)
        seen.append("DL027" in _same_as_cold(run_devlint, tmp_path)[1])
    assert seen == [True, False, True]
    assert any(path.endswith("blur_kernel.cu") for path, _ in _record(tmp_path)["outside"])


def _keyed(payload: bytes) -> bytes:
    """A record with this payload and its right content key: damage that the key cannot
    tell (another writer's bug) must be caught by the shape checks."""
    from devlint.check.cache import content_key

    return content_key(payload).encode() + b"\n" + payload


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw, data: b"{not json",
        lambda raw, data: b"\xff\xfe\x00",
        lambda raw, data: raw[: len(raw) // 2],
        lambda raw, data: raw.replace(b"DL005", b"DL006"),  # parses, and the key tells
        lambda raw, data: _keyed(json.dumps({**data, "format": 1}).encode()),  # an older version's
        lambda raw, data: _keyed(json.dumps({**data, "files": 5}).encode()),
        lambda raw, data: _keyed(json.dumps({**data, "files": [["x"]] * len(data["files"])}).encode()),
        lambda raw, data: _keyed(json.dumps({**data, "outside": [[1, 2, 3]]}).encode()),
        lambda raw, data: _keyed(json.dumps({**data, "findings": [["DL001"]]}).encode()),
        lambda raw, data: _keyed(json.dumps({**data, "findings": {"a": 1}}).encode()),
        lambda raw, data: _keyed(json.dumps([data]).encode()),
    ],
)
def test_a_damaged_or_old_record_is_ignored(run_devlint, tmp_path, damage):
    root = _tree(tmp_path)
    first = _same_as_cold(run_devlint, root)
    record = root / ".devlint_cache" / "last-run.json"
    record.write_bytes(damage(record.read_bytes(), _record(root)))
    assert run_devlint("check", ".", cwd=root) == first
    assert _record(root)["format"] == replay._FORMAT  # recorded again
