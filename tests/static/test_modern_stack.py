"""The rules on the Hugging Face stack, video encoders and C++ extensions (DL021-DL028), on
real files: extension sources read from disk, and scripts that load tiny models built from
configs with the installed libraries (no download; skipped where a library is absent)."""

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devlint.static import entry_points

# A `load()` extension whose op DL027 judges, and its kernel without and with a device guard.
_EXTENSION_DATA = Path(__file__).resolve().parents[1] / "data" / "extension"
EXTENSION = (_EXTENSION_DATA / "ops.py").read_text()
UNGUARDED_CU = (_EXTENSION_DATA / "blur_kernel_unguarded.cu").read_text()
GUARDED_CU = (_EXTENSION_DATA / "blur_kernel_guarded.cu").read_text()


def _check(run_devlint, path):
    code, out, _ = run_devlint("check", path, "--output-format", "json", "--no-cache")
    return [(f["code"], f["location"]["row"]) for f in json.loads(out)]


@pytest.mark.parametrize("kernel,expected", [(UNGUARDED_CU, [("DL027", 10)]), (GUARDED_CU, [])])
def test_an_extension_op_is_flagged_only_when_its_cuda_source_opens_no_guard(run_devlint, tmp_path, kernel, expected):
    (tmp_path / "ops.py").write_text(EXTENSION)
    (tmp_path / "blur.cpp").write_text("#include <torch/extension.h>\ntorch::Tensor blur_cuda(torch::Tensor x);\n")
    (tmp_path / "blur_kernel.cu").write_text(kernel)
    assert _check(run_devlint, tmp_path / "ops.py") == expected


# The same op, its sources in a folder the file names through a variable (IDM-VTON's inplace_abn).
EXTENSION_IN_SRC = EXTENSION.replace(
    'sources=[os.path.join(here, "blur.cpp"), os.path.join(here, "blur_kernel.cu")]',
    'sources=[os.path.join(src, f) for f in ["blur.cpp", "blur_kernel.cu"]]',
).replace("here = os.path.dirname(__file__)\n", 'here = os.path.dirname(__file__)\nsrc = os.path.join(here, "src")\n')


@pytest.mark.parametrize("kernel,expected", [(UNGUARDED_CU, [("DL027", 11)]), (GUARDED_CU, [])])
def test_extension_sources_under_a_folder_named_by_a_variable_are_read(run_devlint, tmp_path, kernel, expected):
    (tmp_path / "ops.py").write_text(EXTENSION_IN_SRC)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "blur.cpp").write_text("#include <torch/extension.h>\n")
    (tmp_path / "src" / "blur_kernel.cu").write_text(kernel)
    (tmp_path / "blur_kernel.cu").write_text(GUARDED_CU)  # a decoy beside the script: not what it builds
    assert "src = " in EXTENSION_IN_SRC and "for f in" in EXTENSION_IN_SRC
    assert _check(run_devlint, tmp_path / "ops.py") == expected


def test_an_extension_whose_sources_are_missing_is_not_judged(run_devlint, tmp_path):
    (tmp_path / "ops.py").write_text(EXTENSION)
    assert _check(run_devlint, tmp_path / "ops.py") == []


def test_every_entry_point_row_names_a_call_an_option_and_its_source():
    """The runtime reads these rows to name the API in its suggestions."""
    rows = [(code, e) for code in ("DL021", "DL022", "DL023", "DL024", "DL025", "DL026") for e in entry_points.of(code)]
    assert len(rows) >= 12
    for code, entry in rows:
        assert entry.names or entry.methods, code
        assert entry.option and entry.cite and entry.library, code


# --- with the installed libraries -------------------------------------------------------


def _tiny_llama(directory):
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2
    )
    transformers.LlamaForCausalLM(config).save_pretrained(directory)
    return directory


LOAD_SCRIPT = """\
import sys

from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained(sys.argv[1], device_map={device_map})
print(next(model.parameters()).device)
"""


def test_a_script_loading_a_real_tiny_model_with_device_map_auto_is_flagged_and_its_fix_loads(run_devlint, tmp_path):
    model_dir = _tiny_llama(tmp_path / "tiny-llama")
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT.format(device_map='"auto"'))
    assert _check(run_devlint, script) == [("DL021", 5)]
    # The loader itself accepts the script (on this CPU machine "auto" plans onto the CPU).
    ran = subprocess.run([sys.executable, script, model_dir], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    # The fixed form, a one-device map, is what transformers documents and loads.
    script.write_text(LOAD_SCRIPT.format(device_map='{"": "cpu"}'))
    assert _check(run_devlint, script) == []
    ran = subprocess.run([sys.executable, script, model_dir], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and ran.stdout.strip() == "cpu", ran.stderr[-2000:]


def test_installed_transformers_maps_cuda_to_local_rank_and_pipeline_to_ordinal_0():
    """The facts DL021 and DL022 encode, read in the installed source."""
    pytest.importorskip("transformers")
    from transformers.integrations import accelerate as tf_accelerate
    from transformers.pipelines import base

    loading = inspect.getsource(tf_accelerate)
    assert 'if device_map == "cuda":' in loading and 'os.environ.get("LOCAL_RANK", 0)' in loading
    init = inspect.getsource(base.Pipeline.__init__)
    assert "device = 0" in init and 'torch.device(f"cuda:{device}")' in init


def test_installed_diffusers_and_peft_default_to_gpu_0():
    """The facts DL024 and DL025 encode, read in the installed source."""
    diffusers = pytest.importorskip("diffusers")
    peft = pytest.importorskip("peft")
    offload = inspect.getsource(diffusers.DiffusionPipeline.enable_model_cpu_offload)
    assert "self._offload_gpu_id = gpu_id or torch_device.index or" in offload
    from peft.utils import other

    assert 'return "cuda"' in inspect.getsource(other.infer_device)
    assert "torch_device = infer_device()" in inspect.getsource(peft.PeftModel.load_adapter)


def test_a_lora_adapter_of_a_tiny_model_is_flagged_without_torch_device(run_devlint, tmp_path):
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    base_dir = _tiny_llama(tmp_path / "base")
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")
    script = tmp_path / "adapter.py"
    script.write_text(textwrap.dedent("""\
        import sys

        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(sys.argv[1])
        model = PeftModel.from_pretrained(base, sys.argv[2])
        print(type(model).__name__)
    """))
    assert _check(run_devlint, script) == [("DL025", 7)]
    ran = subprocess.run([sys.executable, script, base_dir, tmp_path / "adapter"], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and "PeftModel" in ran.stdout, ran.stderr[-2000:]



def test_a_cached_result_follows_a_change_to_the_extension_source(run_devlint, tmp_path):
    """The result of ops.py depends on blur_kernel.cu: guarding the kernel clears the finding
    on the next (cached) run, and removing the guard brings it back."""
    (tmp_path / "ops.py").write_text(EXTENSION)
    (tmp_path / "blur.cpp").write_text("#include <torch/extension.h>\n")
    kernel = tmp_path / "blur_kernel.cu"
    runs = []
    for text in (UNGUARDED_CU, GUARDED_CU, UNGUARDED_CU):
        kernel.write_text(text)
        code, out, _ = run_devlint("check", "ops.py", "--output-format", "json", cwd=tmp_path)
        runs.append([f["code"] for f in json.loads(out)])
    assert runs == [["DL027"], [], ["DL027"]]


SETUP = """\
import glob
import os

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

here = os.path.dirname(os.path.abspath(__file__))
extension = CUDAExtension if os.environ.get("WITH_CUDA", "1") == "1" else CppExtension
setup(
    name="warp_ops",
    ext_modules=[extension("warp_ops._C", glob.glob(os.path.join(here, "csrc", "*.cu")))],
    cmdclass={"build_ext": BuildExtension},
)
"""
WARP = """\
import torch

from warp_ops import _C


def warp(image, flow):
    return _C.warp(image, flow.contiguous())


def warp_here(image, flow):
    with torch.cuda.device(image.device):
        return _C.warp(image, flow)
"""


def test_an_extension_built_by_a_setup_script_is_judged_where_it_is_imported(run_devlint, tmp_path):
    """setup.py builds `warp_ops._C` from csrc/*.cu (a glob: every C++/CUDA file under the
    script's directory stands for the sources); another module imports it and calls its op.
    Guarding the kernel clears the finding, also on the next cached run."""
    (tmp_path / "setup.py").write_text(SETUP)
    (tmp_path / "warp_ops").mkdir()
    (tmp_path / "warp_ops" / "__init__.py").write_text("")
    (tmp_path / "warp_ops" / "warp.py").write_text(WARP)
    (tmp_path / "csrc").mkdir()
    kernel = tmp_path / "csrc" / "warp_kernel.cu"
    runs = []
    for text in (UNGUARDED_CU, GUARDED_CU):
        kernel.write_text(text)
        code, out, _ = run_devlint("check", ".", "--output-format", "json", cwd=tmp_path)
        runs.append([(f["code"], Path(f["filename"]).relative_to(tmp_path).as_posix(), f["location"]["row"]) for f in json.loads(out)])
    assert runs == [[("DL027", "warp_ops/warp.py", 7)], []]


BACKEND = """\
import os

from torch.utils.cpp_extension import load

here = os.path.dirname(os.path.abspath(__file__))
_backend = load(name="_march", sources=[os.path.join(here, "src", f) for f in ["march.cu", "bindings.cpp"]])
"""
MARCH = """\
import torch

try:
    import _march as _backend
except ImportError:
    from .backend import _backend


class _March(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rays):
        out = torch.empty_like(rays)
        _backend.march(rays, out)
        return out


def release():
    _backend.free_workspace()
"""


@pytest.mark.parametrize("kernel,expected", [(UNGUARDED_CU, [("DL027", "march/ops.py", 13)]), (GUARDED_CU, [])])
def test_an_extension_another_module_loads_is_judged_where_it_is_imported(run_devlint, tmp_path, kernel, expected):
    """torch-ngp's layout: backend.py binds `_backend = load(...)` with its sources listed by
    a comprehension under src/, and the op module imports that name (after trying a prebuilt
    module). Only the module whose sources open no guard is flagged, and an op that frees a
    workspace is not."""
    package = tmp_path / "march"
    (package / "src").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "backend.py").write_text(BACKEND)
    (package / "ops.py").write_text(MARCH)
    (package / "src" / "bindings.cpp").write_text("#include <torch/extension.h>\nvoid march(torch::Tensor r, torch::Tensor o);\n")
    (package / "src" / "march.cu").write_text(kernel)
    code, out, _ = run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=tmp_path)
    assert [(f["code"], Path(f["filename"]).relative_to(tmp_path).as_posix(), f["location"]["row"]) for f in json.loads(out)] == expected


def test_an_extension_whose_listed_source_is_missing_is_not_judged_from_another_module(run_devlint, tmp_path):
    package = tmp_path / "march"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "backend.py").write_text(BACKEND)
    (package / "ops.py").write_text(MARCH)
    code, out, _ = run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=tmp_path)
    assert json.loads(out) == []
