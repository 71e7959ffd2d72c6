"""The project index: which callables a call relies on for its device, across the checked files."""

from pathlib import Path

from devlint import catalog
from devlint.check import lint as linter
from devlint.check.discover import discover
from devlint.check.suppress import Suppression
from devlint.config import Settings

ALL = frozenset(catalog.load())


def _findings(root: Path, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    settings = Settings(root=root)
    found, _ = discover([root], settings)
    result = linter.lint(found, Suppression(settings, ALL))
    return [(Path(f.filename).name, f.location.row, f.code, f.message) for f in result.findings]


FACEXLIB_DETECTION = """\
def init_detection_model(model_name, half=False, device='cuda', model_rootpath=None):
    return load(model_name).to(device)
"""
SCRIPT = """\
from facexlib.detection import init_detection_model

net = init_detection_model('retinaface_resnet50', half=False)
"""


def test_a_project_checking_itself_reports_calls_of_its_own_definition(tmp_path):
    # facexlib checked in its own tree: the catalog entry and the definition name the same
    # function; neither may hide the other.
    found = _findings(tmp_path, {"facexlib/__init__.py": "", "facexlib/detection/__init__.py": FACEXLIB_DETECTION, "inference/detect.py": SCRIPT})
    assert [(name, row, code) for name, row, code, _ in found] == [("detect.py", 3, "DL012")]
    assert "facexlib/detection/__init__.py:1" in found[0][3]  # the definition that runs, not the catalog


def test_a_definition_without_a_cuda_default_decides_over_the_catalog(tmp_path):
    fixed = FACEXLIB_DETECTION.replace("device='cuda'", "device='cpu'")
    found = _findings(tmp_path, {"facexlib/__init__.py": "", "facexlib/detection/__init__.py": fixed, "inference/detect.py": SCRIPT})
    assert found == []


def test_an_unrelated_definition_of_the_same_name_does_not_hide_the_catalog(tmp_path):
    own = "def init_detection_model(path, device='cpu'):\n    return load(path).to(device)\n"
    found = _findings(tmp_path, {"tools/models.py": own, "run.py": SCRIPT})
    assert [(name, row, code) for name, row, code, _ in found] == [("run.py", 3, "DL012")]
    assert "(facexlib 0.3.0, per devlint's table)" in found[0][3]


def test_a_relative_import_in_a_package_init_names_a_module_inside_the_package(tmp_path):
    # `from .loader import load` in pkg/sub/__init__.py is pkg.sub.loader, not pkg.loader: the
    # default of `load` is found through it (StreamDiffusion's acceleration/tensorrt/__init__.py).
    loader = "import torch\n\n\ndef load(path, device='cuda'):\n    return torch.load(path, map_location=device)\n"
    init = "from .loader import load\n\n\ndef run(path):\n    return load(path)\n"
    found = _findings(tmp_path, {"pkg/__init__.py": "", "pkg/sub/__init__.py": init, "pkg/sub/loader.py": loader})
    assert ("__init__.py", 5, "DL012") in [(name, row, code) for name, row, code, _ in found]


def test_a_device_passed_to_a_parameter_nothing_reads_is_not_reported(tmp_path):
    # EngineBuilder stores `device` where nothing reads it: the index-less device passed there
    # is used nowhere (StreamDiffusion's EngineBuilder(..., device=torch.device("cuda"))).
    builder = "class EngineBuilder:\n    def __init__(self, model, device):\n        self.model = model\n        self.device = device\n"
    user = "import torch\nfrom .builder import EngineBuilder\n\nbuilder = EngineBuilder(None, device=torch.device('cuda'))\nnet = torch.nn.Linear(2, 2).to(torch.device('cuda'))\n"
    found = _findings(tmp_path, {"pkg/__init__.py": "", "pkg/builder.py": builder, "pkg/use.py": user})
    assert [(name, row, code) for name, row, code, _ in found if code == "DL002"] == [("use.py", 5, "DL002")]
