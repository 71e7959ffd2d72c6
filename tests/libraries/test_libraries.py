"""Library summaries read from the installed source of the environment being linted.

Each test builds a fake virtual environment (pyvenv.cfg, bin/python, lib/python3.X/
site-packages) holding a small stand-in for facexlib: its own code, modelled on what
facexlib 0.2.5 and 0.3.0 do (docs/libraries.md cites the real files and lines). In the
"0.2.5" stand-in the restore helper passes its device on, but the detector it builds never
gets one and moves itself to a module-level CUDA device; in "0.3.0" the device reaches it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jsonschema
import pytest

from devlint.libraries import knowledge, summary

HELPER = '''
import torch

from facexlib.detection import init_detection_model


class FaceRestoreHelper:
    def __init__(self, upscale, face_size=512, det_model="retinaface_resnet50", device=None):
        self.upscale = upscale
        if device is None:
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = device
        self.detector = init_detection_model(det_model, half=False, device=self.device)

    def read(self, image):
        return torch.as_tensor(image).to(self.device)
'''

DETECTION_OLD = '''
from .detector import Detector


def init_detection_model(name, half=False, device="cuda"):
    model = Detector(name, half=half)
    return model.to(device)
'''

DETECTOR_OLD = '''
import torch

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Detector(torch.nn.Module):
    def __init__(self, name, half=False):
        super().__init__()
        self.name = name
        self.mean = torch.tensor([1.0, 2.0, 3.0]).to(device)
'''

DETECTION_NEW = DETECTION_OLD.replace("Detector(name, half=half)", "Detector(name, half=half, device=device)")

DETECTOR_NEW = '''
import torch


class Detector(torch.nn.Module):
    def __init__(self, name, half=False, device=None):
        super().__init__()
        self.device = torch.device("cuda") if device is None else device
        self.mean = torch.tensor([1.0, 2.0, 3.0], device=self.device)
'''

PROJECT = '''
from facexlib.utils.face_restoration_helper import FaceRestoreHelper


def build(device):
    return FaceRestoreHelper(2, face_size=512, device=device)
'''

OMITTED = '''
from facexlib.utils.face_restoration_helper import FaceRestoreHelper


def build():
    return FaceRestoreHelper(2, face_size=512)
'''

FILES = {"old": {"facexlib/detection/__init__.py": DETECTION_OLD, "facexlib/detection/detector.py": DETECTOR_OLD},
         "new": {"facexlib/detection/__init__.py": DETECTION_NEW, "facexlib/detection/detector.py": DETECTOR_NEW}}


def make_venv(root: Path, version: str, behaviour: str, extra: dict[str, bytes | str] | None = None) -> Path:
    """A virtual environment's layout with a facexlib stand-in; its bin/python is this
    interpreter (never run: a venv's layout says where site-packages is)."""
    site = root / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    files = {
        "facexlib/__init__.py": "",
        "facexlib/utils/__init__.py": "",
        "facexlib/utils/face_restoration_helper.py": HELPER,
        **FILES[behaviour],
        **(extra or {}),
    }
    for name, text in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    info = site / f"facexlib-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: facexlib\nVersion: {version}\n")
    (info / "top_level.txt").write_text("facexlib\n")
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in files) + f"{info.name}/METADATA,,\n")
    (root / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    (root / "bin").mkdir()
    (root / "bin" / "python").symlink_to(sys.executable)
    return root / "bin" / "python"


def project(tmp_path: Path, text: str = PROJECT, config: str = "") -> Path:
    root = tmp_path / "proj"
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f"[tool.devlint]\n{config}")
    (root / "restore.py").write_text(text)
    return root


def check_json(run_devlint, root: Path, *args) -> list[dict]:
    code, out, err = run_devlint("check", root, "--output-format", "json", "--no-cache", *args)
    assert code in (0, 1), err
    return json.loads(out)


def test_two_versions_of_a_library_give_two_answers(run_devlint, tmp_path):
    old = make_venv(tmp_path / "old", "0.2.5", "old")
    new = make_venv(tmp_path / "new", "0.3.0", "new")
    root = project(tmp_path)
    with_old = check_json(run_devlint, root, "--python", old)
    assert [(f["code"], f["location"]["row"]) for f in with_old] == [("DL012", 6)]
    message = with_old[0]["message"]
    assert "whatever `device` it is given" in message
    assert "`Detector(name, half=half)`" in message and "facexlib/detection/__init__.py:6" in message
    assert "facexlib/detection/detector.py:11" in message  # the fixed module-level device it moves to
    assert "(facexlib 0.2.5, read from the installed source)" in message
    assert with_old[0]["library"] == {"name": "facexlib", "version": "0.2.5", "source": "installed", "python": str(old)}
    assert check_json(run_devlint, root, "--python", new) == []
    jsonschema.validate(with_old, json.loads((Path(__file__).parents[2] / "docs" / "findings.schema.json").read_text()))


def test_sarif_says_which_environment_was_read(run_devlint, tmp_path):
    old = make_venv(tmp_path / "old", "0.2.5", "old")
    _, out, _ = run_devlint("check", project(tmp_path), "--output-format", "sarif", "--no-cache", "--python", old)
    (run,) = json.loads(out)["runs"]
    environment = run["properties"]["environment"]
    assert environment["python"] == str(old) and environment["chosen_by"] == "--python"
    assert environment["read"] == [{"name": "facexlib", "version": "0.2.5", "source": "installed", "python": str(old)}]
    assert run["results"][0]["properties"]["library"]["version"] == "0.2.5"


def test_the_installed_default_is_read_and_named(run_devlint, tmp_path):
    new = make_venv(tmp_path / "new", "0.3.0", "new")
    root = project(tmp_path, OMITTED)
    found = check_json(run_devlint, root, "--python", new)
    assert [f["code"] for f in found] == ["DL012"]
    assert "defaults to None -> 'cuda' (facexlib 0.3.0, read from the installed source: " in found[0]["message"]
    assert "facexlib/utils/face_restoration_helper.py:8" in found[0]["message"]


def test_the_environment_comes_from_config_or_virtual_env(run_devlint, tmp_path, monkeypatch):
    old = make_venv(tmp_path / "old", "0.2.5", "old")
    root = project(tmp_path, config=f'python = "{os.path.relpath(old, tmp_path / "proj")}"\n')
    assert [f["library"]["version"] for f in check_json(run_devlint, root)] == ["0.2.5"]
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "old"))
    elsewhere = project(tmp_path / "other")
    assert [f["library"]["version"] for f in check_json(run_devlint, elsewhere)] == ["0.2.5"]
    new = make_venv(tmp_path / "new", "0.3.0", "new")
    assert check_json(run_devlint, elsewhere, "--python", new) == []  # --python wins over VIRTUAL_ENV


def test_not_installed_falls_back_to_the_table_with_its_versions(run_devlint, tmp_path):
    bare = tmp_path / "bare"
    (bare / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (bare / "pyvenv.cfg").write_text("include-system-site-packages = false\n")
    root = project(tmp_path, OMITTED)
    found = check_json(run_devlint, root, "--python", bare)
    assert [f["code"] for f in found] == ["DL012"]
    assert "(facexlib 0.3.0, per devlint's table)" in found[0]["message"]
    assert found[0]["library"] == {"name": "facexlib", "version": "0.3.0", "source": "table", "python": None}
    # With the tables pinned, an installed facexlib 0.2.5 is not read either.
    old = make_venv(tmp_path / "old", "0.2.5", "old")
    pinned = project(tmp_path / "pinned", config='libraries = "tables"\n')
    assert check_json(run_devlint, pinned, "--python", old) == []


def test_summaries_are_cached_reused_and_invalidated_by_a_new_version(run_devlint, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DEVLINT_CACHE_DIR", str(cache))
    parsed = []
    real = summary.summarise
    monkeypatch.setattr(summary, "summarise", lambda data, display, *rest: parsed.append(display) or real(data, display, *rest))
    venv = make_venv(tmp_path / "venv", "0.2.5", "old")
    root = project(tmp_path)

    def run():
        code, out, err = run_devlint("check", root, "--python", venv)  # the results cache is on: the library cache must not need it
        assert code == 1, err
        return out

    first = run()
    assert sorted(parsed) == ["facexlib/detection/__init__.py", "facexlib/detection/detector.py", "facexlib/utils/face_restoration_helper.py"]
    stored = json.loads((cache / "libraries" / "facexlib-0.2.5.json").read_text())
    assert stored["key"]["version"] == "0.2.5" and "facexlib.detection.detector" in stored["modules"]
    parsed.clear()
    (root / ".devlint_cache").rename(tmp_path / "results-cache-moved")  # a fresh project cache: only the library cache is warm
    assert run() == first
    assert parsed == []  # nothing of the library was parsed again
    # A new version of the same distribution (upgraded in place) is a miss.
    site = venv.parent.parent / "lib"
    info = next(site.glob("python*/site-packages/facexlib-0.2.5.dist-info"))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: facexlib\nVersion: 0.2.6\n")
    info.rename(info.with_name("facexlib-0.2.6.dist-info"))
    out = run()
    assert "facexlib 0.2.6, read from the installed source" in out
    assert len(parsed) == 3 and (cache / "libraries" / "facexlib-0.2.6.json").is_file()


@pytest.mark.parametrize("broken", [b"def init_detection_model(:\n", "x = 'caf\xe9'\n".encode("latin-1")])
def test_an_unreadable_library_file_is_skipped_quietly(run_devlint, tmp_path, broken):
    venv = make_venv(tmp_path / "venv", "0.2.5", "old", {"facexlib/detection/__init__.py": broken})
    code, out, err = run_devlint("check", project(tmp_path), "--python", venv, "--no-cache")
    assert code == 0 and err == "" and "DL901" not in out


def test_a_helper_that_does_not_pass_its_device_on_ignores_it(tmp_path):
    """The shape the brief of issue 22 described: the helper itself drops `device`."""
    dropping = HELPER.replace("init_detection_model(det_model, half=False, device=self.device)", "init_detection_model(det_model, half=False)")
    venv = make_venv(tmp_path / "venv", "0.1.0", "new", {"facexlib/utils/face_restoration_helper.py": dropping})
    from devlint.libraries import Libraries, find

    entries = Libraries(find(str(venv))).defaults({"facexlib.utils.face_restoration_helper.FaceRestoreHelper"}, set())
    ignoring = [e for e in entries if e.ignores]
    assert len(ignoring) == 1 and "calls `init_detection_model(det_model, half=False)` without `device`" in ignoring[0].ignores


def test_a_project_module_of_the_same_name_is_never_read_as_a_library(tmp_path):
    venv = make_venv(tmp_path / "venv", "0.2.5", "old")
    from devlint.libraries import Libraries, find

    entries = Libraries(find(str(venv))).defaults({"facexlib.utils.face_restoration_helper.FaceRestoreHelper"}, {"facexlib"})
    assert all(e.library is None or e.library.source == "table" for e in entries)


def test_a_missing_interpreter_is_one_line(run_devlint, tmp_path):
    code, _, err = run_devlint("check", project(tmp_path), "--python", tmp_path / "nope" / "python")
    assert code == 2 and err.count("\n") == 1 and "python interpreter not found" in err


def test_the_bound_on_files_read(monkeypatch, tmp_path):
    monkeypatch.setattr(knowledge, "MAX_FILES", 1)
    venv = make_venv(tmp_path / "venv", "0.2.5", "old")
    from devlint.libraries import Libraries, find

    libraries = Libraries(find(str(venv)), use_cache=False)
    entries = libraries.defaults({"facexlib.utils.face_restoration_helper.FaceRestoreHelper"}, set())
    assert not any(e.ignores for e in entries)  # the detector's file was never reached


ENHANCER = '''
import torch

from facexlib.utils.face_restoration_helper import FaceRestoreHelper


class Enhancer:
    def __init__(self, model_path, upscale=2, device=None):
        self.device = torch.device("cuda") if device is None else device
        self.helper = FaceRestoreHelper(upscale, face_size=512, device=self.device)
'''


def test_a_library_built_on_another_names_both_versions(run_devlint, tmp_path):
    """A library that passes the device on to one that drops it drops it too, and the
    message names the versions of both (gfpgan 1.3.8 on facexlib 0.2.5 does this)."""
    venv = make_venv(tmp_path / "venv", "0.2.5", "old", {"enhancer/__init__.py": ENHANCER})
    info = next(venv.parent.parent.glob("lib/python*/site-packages")) / "enhancer-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: enhancer\nVersion: 1.0\nRequires-Dist: torch>=1.7\n")
    (info / "RECORD").write_text("enhancer/__init__.py,,\n")
    root = project(tmp_path, "from enhancer import Enhancer\n\n\ndef build(path, device):\n    return Enhancer(path, device=device)\n")
    (finding,) = check_json(run_devlint, root, "--python", venv)
    assert "(enhancer 1.0 and facexlib 0.2.5, read from the installed source)" in finding["message"]
    assert "`FaceRestoreHelper(upscale, face_size=512, device=self.device)` (enhancer/__init__.py:10)" in finding["message"]


def test_an_interpreter_that_is_not_a_virtual_environment_is_asked_for_its_path(tmp_path):
    """A system Python has no pyvenv.cfg: it is asked for sys.path in isolated mode, from a
    directory holding a `json.py` that must not be imported (the project's files never are)."""
    from devlint.libraries import find

    base = Path(getattr(sys, "_base_executable", sys.executable))
    if (base.parent.parent / "pyvenv.cfg").exists():
        pytest.skip("no interpreter outside a virtual environment at hand")
    (tmp_path / "json.py").write_text("raise SystemExit('imported the project')\n")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        environment = find(str(base))
    finally:
        os.chdir(old)
    assert environment.chosen_by == "--python" and environment.site_dirs
    assert str(tmp_path) not in environment.site_dirs and all(Path(d).is_dir() for d in environment.site_dirs)


CLAP_HOOK = '''
import torch


class CLAP_Module(torch.nn.Module):
    def __init__(self, enable_fusion=False, device=None, amodel="HTSAT-tiny"):
        super().__init__()
        if device is None:
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.model = torch.nn.Linear(2, 2).to(device)
'''


def test_a_gpu0_the_library_writes_is_its_callers_default(run_devlint, tmp_path):
    """laion_clap's CLAP_Module turns device=None into 'cuda:0' (1.1.4-1.1.7 hook.py:36-37):
    read from the installed source, a construction without a device lands on GPU0."""
    env = make_venv(tmp_path / "env", "0.3.0", "new", {
        "laion_clap/__init__.py": "from .hook import CLAP_Module\n", "laion_clap/hook.py": CLAP_HOOK,
    })
    root = project(tmp_path, "import laion_clap\n\n\ndef embedder(device):\n    a = laion_clap.CLAP_Module()\n    b = laion_clap.CLAP_Module(device=device)\n    return a, b\n")
    site = next((tmp_path / "env" / "lib").glob("python*/site-packages"))
    info = site / "laion_clap-1.1.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: laion_clap\nVersion: 1.1.7\n")
    (info / "RECORD").write_text("laion_clap/__init__.py,,\nlaion_clap/hook.py,,\n")
    found = check_json(run_devlint, root, "--python", env)
    assert [(f["code"], f["location"]["row"]) for f in found] == [("DL012", 5)]
    message = found[0]["message"]
    assert "None -> \"cuda:0\"" in message and "laion_clap 1.1.7, read from the installed source" in message and "GPU0" in message


def test_a_placement_in_a_branch_of_a_library_function_is_not_regardless():
    # accelerate's load_checkpoint_in_model reaches a `.to(0)` only when it offloads 8-bit
    # weights to disk: that branch says nothing about every call.
    text = (
        "import torch\n\n\n"
        "def offload(param):\n    return param.to(0)\n\n\n"
        "def load(model, checkpoint, device_map=None):\n"
        "    if device_map == 'disk':\n        offload(model)\n"
        "    return model.to(device_map)\n\n\n"
        "def always(model):\n    return offload(model)\n"
    )
    found = summary.summarise(text.encode(), "lib/loading.py", "lib.loading")["definitions"]
    assert found["lib.loading.offload"]["fixed"]
    assert not found.get("lib.loading.load", {}).get("calls")
    assert [call[0] for call in found["lib.loading.always"]["calls"]] == ["lib.loading.offload"]
