"""What the rules on other GPU runtimes share: project-wide kernels and CUDA_VISIBLE_DEVICES
setters, the GPU index a fix writes, statement rewrites, one finding per function."""

import textwrap
from pathlib import Path

from devlint import catalog
from devlint.check import lint as linter
from devlint.check.cache import Cache, header_key
from devlint.check.discover import discover
from devlint.check.snippet import fix_text, lint_text
from devlint.check.suppress import Suppression
from devlint.config import Settings

ALL = frozenset(catalog.load())

SELECT_DEVICE = """\
import os


def select_device(device):
    os.environ["CUDA_VISIBLE_DEVICES"] = device
"""

ORT_SCRIPT = """\
import onnxruntime
{imports}

def main(path, gpu):
    {call}
    return onnxruntime.InferenceSession(path, providers=["CUDAExecutionProvider"])
"""

KERNELS = """\
import triton


@triton.jit
def double_kernel(out, x):
    pass
"""

LAUNCH = """\
import torch
from kernels import double_kernel


def double(x):
    out = torch.empty_like(x)
    double_kernel[(1,)](out, x)
    return out
"""


def _lint(root, cache=None):
    settings = Settings(root=root)
    files, _ = discover([root], settings)
    return linter.lint(files, Suppression(settings, ALL), cache=cache)


def _found(result):
    return [(f.filename.rsplit("/", 1)[-1], f.location.row, f.code) for f in result.findings]


def _write(root, **files):
    for name, text in files.items():
        (root / f"{name}.py").write_text(text)


def test_a_module_that_masks_gpus_through_a_project_helper_is_not_flagged(tmp_path):
    masked = ORT_SCRIPT.format(imports="from utils import select_device\n", call="select_device(str(gpu))")
    _write(tmp_path, utils=SELECT_DEVICE, masked=masked, unmasked=ORT_SCRIPT.format(imports="", call="pass"))
    assert _found(_lint(tmp_path)) == [("unmasked.py", 6, "DL014")]


def test_cached_result_follows_a_helper_that_starts_masking(tmp_path):
    masked = ORT_SCRIPT.format(imports="from utils import select_device\n", call="select_device(str(gpu))")
    _write(tmp_path, utils="def select_device(device):\n    return device\n", script=masked)
    cache = Cache(tmp_path, header_key(ALL, Path.cwd()))
    assert _found(_lint(tmp_path, cache)) == [("script.py", 7, "DL014")]
    _write(tmp_path, utils=SELECT_DEVICE)
    assert _found(_lint(tmp_path, Cache(tmp_path, header_key(ALL, Path.cwd())))) == []


def test_a_kernel_imported_from_another_module_is_flagged_and_fixed(run_devlint, tmp_path):
    _write(tmp_path, kernels=KERNELS, ops=LAUNCH)
    assert _found(_lint(tmp_path)) == [("ops.py", 7, "DL017")]
    run_devlint("check", tmp_path, "--fix", "--unsafe-fixes", "--no-cache")
    assert "    with torch.cuda.device(out.device):\n        double_kernel[(1,)](out, x)\n" in (tmp_path / "ops.py").read_text()


def test_a_kernel_from_the_cache_is_still_known(tmp_path):
    _write(tmp_path, kernels=KERNELS, ops=LAUNCH)
    _lint(tmp_path, Cache(tmp_path, header_key(ALL, Path.cwd())))
    _write(tmp_path, ops=LAUNCH + "\n")  # ops.py is checked again, kernels.py's facts come from the cache
    assert _found(_lint(tmp_path, Cache(tmp_path, header_key(ALL, Path.cwd())))) == [("ops.py", 7, "DL017")]


def test_a_launch_in_a_file_that_never_names_triton_is_checked(tmp_path):
    launch = "from kernels import double_kernel\n\n\ndef double(out, x):\n    double_kernel[(1,)](out, x)\n"
    _write(tmp_path, kernels=KERNELS, ops=launch)
    assert _found(_lint(tmp_path)) == [("ops.py", 5, "DL017")]


def test_subscripted_calls_that_are_not_kernels_are_not_flagged():
    text = """
    import torch
    import triton


    def apply(layers, handlers, x, i):
        y = layers[i](x)
        return handlers["cuda"](y)
    """
    assert lint_text(textwrap.dedent(text)) == []


def test_the_fix_imports_torch_when_it_writes_a_torch_device_index():
    text = textwrap.dedent("""
        import onnxruntime


        def load(path, device):
            return onnxruntime.InferenceSession(path, providers=["CUDAExecutionProvider"])
        """)
    fixed, remaining = fix_text(text, unsafe=True)
    assert fixed.startswith("\nimport torch\nimport onnxruntime\n")
    assert '[("CUDAExecutionProvider", {"device_id": torch.device(device).index or 0})]' in fixed
    assert remaining == []


def test_a_gpu_index_in_scope_wins_over_a_device():
    text = "import onnxruntime\n\n\ndef load(path, device, gpu_id):\n    return onnxruntime.InferenceSession(path, providers=['CUDAExecutionProvider'])\n"
    (finding,) = lint_text(text)
    assert finding.fix.message.startswith("Use `('CUDAExecutionProvider', {'device_id': gpu_id})`")


def test_a_launch_spanning_a_multiline_string_is_not_rewrapped():
    text = textwrap.dedent('''
        import triton


        @triton.jit
        def k(x, note):
            pass


        def run(x):
            k[(1,)](x, """two
        lines""")
        ''')
    (finding,) = lint_text(text)
    assert finding.code == "DL017" and finding.fix.applicability.value == "display-only"


def test_one_finding_per_function_for_a_runtime_start():
    text = textwrap.dedent("""
        import tensorflow as tf


        def first(n):
            a = tf.zeros((n, 3))
            b = tf.ones((n, 3))
            return a + b


        def second(n):
            return tf.constant(n)
        """)
    assert [(f.code, f.location.row) for f in lint_text(text)] == [("DL016", 6), ("DL016", 12)]
