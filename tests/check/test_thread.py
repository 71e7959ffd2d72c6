"""Device threading across modules, as a user meets it: the message, --diff, --fix, JSON, SARIF."""

import json
import py_compile
from pathlib import Path

import pytest

from devlint.check import write

HELPERS = '''
from gfpgan import GFPGANer


def build_enhancer(path):
    return GFPGANer(model_path=path, upscale=2)


def enhance_all(images, path):
    enhancer = build_enhancer(path)
    return [enhancer.enhance(i) for i in images]
'''

PIPELINE = '''
from pkg.helpers import enhance_all


class Animator:
    def __init__(self, device):
        self.device = device

    def run(self, images, path):
        return enhance_all(images, path)


def script(images, path):
    return enhance_all(images, path)


enhance_all([], "weights.pth")
'''

HELPERS_FIXED = '''
from gfpgan import GFPGANer


def build_enhancer(path, device=None):
    return GFPGANer(model_path=path, upscale=2, device=device)


def enhance_all(images, path, device=None):
    enhancer = build_enhancer(path, device=device)
    return [enhancer.enhance(i) for i in images]
'''

PIPELINE_FIXED = '''
from pkg.helpers import enhance_all


class Animator:
    def __init__(self, device):
        self.device = device

    def run(self, images, path):
        return enhance_all(images, path, device=self.device)


def script(images, path, device=None):
    return enhance_all(images, path, device=device)


enhance_all([], "weights.pth")
'''

GRID = '''
import torch


def make_grid(size, type):
    h, w = size
    x = torch.arange(w).type(type)
    y = torch.arange(h).type(type)
    return torch.stack([x.repeat(h), y.repeat(w)])
'''

DETECTOR = '''
from pkg.grid import make_grid


def locate(heatmap):
    return make_grid(heatmap.shape[2:], heatmap.type()) * heatmap


def warp(kp):
    return make_grid((4, 4), type=kp["value"].type())
'''


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.devlint]\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / "pkg" / name).write_text(text.lstrip())
    return tmp_path


def _check(run_devlint, tmp_path, *args):
    """`devlint check .` run from the project, as a user would."""
    return run_devlint("check", ".", *args, cwd=tmp_path)


def _text(tmp_path, name):
    return (tmp_path / "pkg" / name).read_text()


def test_the_message_names_who_provides_the_device_and_who_cannot(run_devlint, tmp_path):
    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE})
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache")
    assert code == 1
    finding = next(line for line in out.splitlines() if "GFPGANer(...)` omits `device`" in line)
    fix = out.splitlines()[out.splitlines().index(finding) + 1]
    assert "fix (unsafe): Add `device=None` to `build_enhancer` and use it here" in fix
    assert "`enhance_all`, `script` take it too and pass it on" in fix
    assert "pkg/pipeline.py:9 (`self.device`)" in fix
    assert "callers left without one: pkg/pipeline.py:16 (module-level code" in fix
    assert "changes 2 files: pkg/helpers.py, pkg/pipeline.py" in fix


def test_diff_shows_every_file_of_the_fix_and_writes_nothing(run_devlint, tmp_path):
    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE})
    code, out, err = _check(run_devlint, tmp_path, "--no-cache", "--diff", "--unsafe-fixes")
    assert code == 1
    assert "--- a/" in out and out.count("+++ b/") == 2
    assert "+def build_enhancer(path, device=None):" in out
    assert "+        return enhance_all(images, path, device=self.device)" in out
    assert _text(tmp_path, "helpers.py") == HELPERS.lstrip()
    code, out, err = _check(run_devlint, tmp_path, "--no-cache", "--diff")
    assert "No fixes to apply." in err  # a multi-file fix is unsafe: not without --unsafe-fixes


def test_fix_changes_both_files_and_a_second_run_changes_nothing(run_devlint, tmp_path):
    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE})
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert "Fixed 1 finding in 2 files: pkg/helpers.py, pkg/pipeline.py." in out
    assert _text(tmp_path, "helpers.py") == HELPERS_FIXED.lstrip()
    assert _text(tmp_path, "pipeline.py") == PIPELINE_FIXED.lstrip()
    for name in ("helpers.py", "pipeline.py"):
        py_compile.compile(str(tmp_path / "pkg" / name), doraise=True)
    _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert _text(tmp_path, "helpers.py") == HELPERS_FIXED.lstrip()
    assert _text(tmp_path, "pipeline.py") == PIPELINE_FIXED.lstrip()


def test_a_fix_whose_second_file_cannot_be_written_changes_neither(run_devlint, tmp_path, monkeypatch):
    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE})
    real_replace = write.os.replace

    def refuse_pipeline(src, dst):
        if str(dst).endswith("pipeline.py"):
            raise OSError(30, "Read-only file system")
        real_replace(src, dst)

    monkeypatch.setattr(write.os, "replace", refuse_pipeline)
    code, out, err = _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert "not written" in err and "Read-only file system" in err
    assert _text(tmp_path, "helpers.py") == HELPERS.lstrip()
    assert _text(tmp_path, "pipeline.py") == PIPELINE.lstrip()
    assert not [p for p in (tmp_path / "pkg").iterdir() if p.name.endswith(".devlint")]  # no temporary left
    assert "GFPGANer(...)` omits `device`" in out  # still reported


def test_json_and_sarif_carry_the_other_files_edits(run_devlint, tmp_path):
    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE})
    _, out, _ = _check(run_devlint, tmp_path, "--no-cache", "--output-format", "json")
    finding = next(f for f in json.loads(out) if f["code"] == "DL012")
    edits = finding["fix"]["edits"]
    assert finding["fix"]["applicability"] == "unsafe"
    assert {e.get("filename") for e in edits} == {None, str(Path(tmp_path).resolve() / "pkg" / "pipeline.py")}
    assert any("device=self.device" in e["content"] for e in edits if e.get("filename"))
    _, out, _ = _check(run_devlint, tmp_path, "--no-cache", "--output-format", "sarif")
    result = next(r for r in json.loads(out)["runs"][0]["results"] if r["ruleId"] == "DL012")
    changes = result["fixes"][0]["artifactChanges"]
    assert sorted(c["artifactLocation"]["uri"].rsplit("/", 1)[-1] for c in changes) == ["helpers.py", "pipeline.py"]


def test_type_string_helper_is_reported_at_every_call_and_fixed_with_its_callers(run_devlint, tmp_path):
    _project(tmp_path, {"grid.py": GRID, "detector.py": DETECTOR})
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache")
    assert "pkg/detector.py:5:12: DL003" in out and "is passed `heatmap.type()`" in out
    assert "pkg/detector.py:9:12: DL003" in out
    assert "pkg/grid.py:6:9: DL003" in out and "pkg/grid.py:7:9: DL003" in out
    _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert "def make_grid(size, type, device=None):" in _text(tmp_path, "grid.py")
    assert "x = torch.arange(w, device=device).type(type)" in _text(tmp_path, "grid.py")
    assert "y = torch.arange(h, device=device).type(type)" in _text(tmp_path, "grid.py")
    detector = _text(tmp_path, "detector.py")
    assert "make_grid(heatmap.shape[2:], heatmap.type(), device=heatmap.device)" in detector
    assert 'make_grid((4, 4), type=kp["value"].type(), device=kp["value"].device)' in detector
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache")
    assert code == 0, out


def test_a_helper_nobody_calls_is_still_reported_and_made_device_aware(run_devlint, tmp_path):
    _project(tmp_path, {"grid.py": GRID})
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache")
    assert "pkg/grid.py:6:9: DL003" in out and "whenever a caller passes a CUDA type string" in out
    assert "no caller in the checked files has a device to pass yet" in out


@pytest.mark.parametrize(
    "body, why",
    [
        ("def f(x, **kwargs):\n    return x.cuda()\n", "takes **kwargs"),
        ("def outer():\n    def f(x):\n        return x.cuda()\n    return f\n", "nested in another function"),
        ("class C:\n    @property\n    def f(self):\n        return self.x.cuda()\n", "is a @property"),
        ("x = torch.zeros(1)\ny = x.cuda()\n", "module-level code has no caller"),
    ],
)
def test_what_cannot_take_a_device_parameter_says_why(run_devlint, tmp_path, body, why):
    (tmp_path / "m.py").write_text("import torch\n" + body)
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache")
    assert "DL001" in out and "fix (display-only)" in out and why in out


def test_a_chain_longer_than_the_bound_is_not_half_threaded(run_devlint, tmp_path):
    levels = ["def f0(x):\n    return x.cuda()\n"]
    levels += [f"def f{i}(x):\n    return f{i - 1}(x)\n" for i in range(1, 9)]
    (tmp_path / "m.py").write_text("\n\n".join(levels))
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache")
    assert "longer than 6 functions" in out
    before = (tmp_path / "m.py").read_text()
    _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert (tmp_path / "m.py").read_text() == before


def test_without_libcst_the_text_fixes_still_apply_and_the_structural_ones_say_why(tmp_path):
    """libcst is a dependency, but an environment that lost it must not lose every fix."""
    import subprocess
    import sys

    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE, "loader.py": "import torch\n\n\ndef load(path, device):\n    return torch.load(path)\n"})
    script = (
        "import sys; sys.modules['libcst'] = None\n"
        "from devlint.cli import main\n"
        "sys.argv = ['devlint', 'check', '.', '--fix', '--unsafe-fixes', '--no-cache']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert "structural fixes need libcst, which is not installed" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "map_location=device" in _text(tmp_path, "loader.py")  # a text fix
    assert _text(tmp_path, "helpers.py") == HELPERS.lstrip()  # the structural one, untouched


def test_warm_run_reads_the_plan_back_and_a_changed_caller_replans_it(run_devlint, tmp_path, monkeypatch):
    """The plan of a threaded fix (which parses its callers) comes from the cache when no
    file changed, and is made again when only a caller, not the finding's file, changed."""
    from devlint.check import thread

    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE})
    _, cold, _ = _check(run_devlint, tmp_path)
    assert "pkg/pipeline.py:9 (`self.device`)" in cold

    def planned(result):
        raise AssertionError("nothing changed, yet the project-wide stages ran again")

    with monkeypatch.context() as patched:
        patched.setattr(thread, "project_findings", planned)
        _, warm, _ = _check(run_devlint, tmp_path)
    assert warm == cold

    pipeline = tmp_path / "pkg" / "pipeline.py"
    pipeline.write_text(pipeline.read_text().replace("self.device = device", "self._device = device").replace(
        "return enhance_all(images, path)\n\n\ndef", "return enhance_all(images, path)  # uses self._device\n\n\ndef"
    ))
    _, changed, _ = _check(run_devlint, tmp_path)
    assert "pkg/pipeline.py:9 (`self._device`)" in changed and changed != cold


def test_a_change_the_plan_never_read_keeps_it_and_a_new_caller_replans_it(run_devlint, tmp_path, monkeypatch):
    """Editing an unrelated file reuses the plan; a new file calling the threaded function
    (found by searching, not by reading a file read before) makes it again."""
    from devlint.check import thread

    _project(tmp_path, {"helpers.py": HELPERS, "pipeline.py": PIPELINE, "other.py": "import torch\n"})
    _, cold, _ = _check(run_devlint, tmp_path)
    (tmp_path / "pkg" / "other.py").write_text("import torch\n\n\ndef ones():\n    return torch.ones(2)\n")

    def planned(result):
        raise AssertionError("the plan read nothing that changed, yet it was made again")

    with monkeypatch.context() as patched:
        patched.setattr(thread, "project_findings", planned)
        _, warm, _ = _check(run_devlint, tmp_path)
    assert warm == cold

    (tmp_path / "pkg" / "caller.py").write_text(
        "from pkg.helpers import enhance_all\n\n\nclass Job:\n    def __init__(self, device):\n"
        "        self.device = device\n\n    def go(self, images):\n        return enhance_all(images, 'w.pth')\n"
    )
    _, replanned, _ = _check(run_devlint, tmp_path)
    assert "pkg/caller.py:9 (`self.device`)" in replanned


# --- threaded fixes that meet in one function (issue 25) -----------------------------

BUILDER = '''
import torch
def load_model(path, device="cuda"):
    return torch.nn.Linear(2, 2).to(device)
'''

RUN = '''
import argparse, torch
from pkg.builder import load_model
def eval_model(args):
    model = load_model(args.path)
    x = torch.zeros(2).cuda()
    y = torch.ones(2).cuda()
    return model(x + y)
if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--path"); eval_model(p.parse_args())
'''


def test_three_threaded_fixes_through_one_function_add_one_parameter(run_devlint, tmp_path):
    """The reproduction of issue 25: one DL012 and two DL011 threaded through `eval_model`
    aborted with an internal CodemodError and applied none."""
    _project(tmp_path, {"builder.py": BUILDER, "run.py": RUN})
    _, out, err = _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert "internal error" not in err and "dropped" not in err
    assert "Fixed 3 findings in 1 file: pkg/run.py." in out
    fixed = _text(tmp_path, "run.py")
    assert fixed.count("device=") == 2  # the parameter once, the call passing it once
    assert 'def eval_model(args, device="cuda"):' in fixed
    assert "model = load_model(args.path, device=device)" in fixed
    assert "x = torch.zeros(2).cuda(device)" in fixed and "y = torch.ones(2).cuda(device)" in fixed
    py_compile.compile(str(tmp_path / "pkg" / "run.py"), doraise=True)
    _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert _text(tmp_path, "run.py") == fixed
    assert _text(tmp_path, "builder.py") == BUILDER.lstrip()


SEVERAL = '''
import torch


def prepare(batch):
    a = torch.zeros(2).cuda()
    b = torch.ones(2).cuda()
    c = batch.cuda()
    torch.cuda.synchronize()
    return a + b + c
'''

CALLERS = '''
from pkg.several import prepare


class Trainer:
    def __init__(self, device):
        self.device = device

    def step(self, batch):
        return prepare(batch)


def evaluate(batch):
    return prepare(batch)
'''


def test_several_findings_in_one_function_share_one_parameter_across_modules(run_devlint, tmp_path):
    _project(tmp_path, {"several.py": SEVERAL, "callers.py": CALLERS})
    _, _, err = _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert "internal error" not in err and "dropped" not in err
    several, callers = _text(tmp_path, "several.py"), _text(tmp_path, "callers.py")
    assert several.count("def prepare(batch, device=None):") == 1 and several.count("device=None") == 1
    for site in ("torch.zeros(2).cuda(device)", "torch.ones(2).cuda(device)", "batch.cuda(device)", "torch.cuda.synchronize(device)"):
        assert site in several
    assert "return prepare(batch, device=self.device)" in callers
    assert "def evaluate(batch, device=None):\n    return prepare(batch, device=device)" in callers
    for name in ("several.py", "callers.py"):
        py_compile.compile(str(tmp_path / "pkg" / name), doraise=True)
    _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert (_text(tmp_path, "several.py"), _text(tmp_path, "callers.py")) == (several, callers)


LIBRARY = '''
import torch


def load_a(device="cuda"):
    return torch.nn.Linear(2, 2).to(device)


def load_b(device=None):
    if device is None:
        device = "cuda"
    return torch.nn.Linear(2, 2).to(device)
'''

BOTH = '''
from pkg.library import load_a, load_b


def build():
    return load_a(), load_b()
'''


def test_conflicting_defaults_thread_the_first_and_say_why_not_the_second(run_devlint, tmp_path):
    _project(tmp_path, {"library.py": LIBRARY, "both.py": BOTH})
    code, out, _ = _check(run_devlint, tmp_path, "--no-cache")
    lines = out.splitlines()
    fix_a = lines[lines.index(next(x for x in lines if "`load_a(...)` omits" in x)) + 1]
    fix_b = lines[lines.index(next(x for x in lines if "`load_b(...)` omits" in x)) + 1]
    assert 'fix (unsafe): Add `device="cuda"` to `build`' in fix_a
    assert fix_b.startswith("  fix (display-only):")
    assert 'another fix in this run gives `build` the parameter `device="cuda"`' in fix_b
    _, _, err = _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert "internal error" not in err
    fixed = _text(tmp_path, "both.py")
    assert fixed.count("def build(device=\"cuda\"):") == 1 and "load_a(device=device)" in fixed
    py_compile.compile(str(tmp_path / "pkg" / "both.py"), doraise=True)
    _check(run_devlint, tmp_path, "--no-cache", "--fix", "--unsafe-fixes")
    assert _text(tmp_path, "both.py") == fixed


def test_plans_that_cannot_be_joined_drop_the_later_one_and_keep_the_others():
    """The fix stage itself: two plans that give one function different parameters (which
    the thread stage no longer makes, but a cache or an editor could hand it) apply the
    first and report the second, instead of an internal error."""
    from devlint.check.fix import _structural
    from devlint.findings import AddArgument, AddParameter, Applicability, Finding, Fix, Location, Span, Threading

    text = "import torch\ndef f(x):\n    return x.cuda()\n"
    target = Span("m.py", (2, 1), (2, 6))
    site = AddArgument(Span("m.py", (3, 12), (3, 18)), None, "device")

    def finding(default):
        request = Threading(target, "m.f", "device", default, (site,), plan=(AddParameter(target, "m.f", "device", default), site))
        return Finding("DL001", "m", "m.py", Location(3, 12), Location(3, 20), Fix(Applicability.UNSAFE, f"default {default}", (), request))

    done = _structural([finding("None"), finding('"cuda"')], {"m.py": text})
    assert done.applied == 1
    assert done.texts["m.py"] == "import torch\ndef f(x, device=None):\n    return x.cuda(device)\n"
    assert len(done.dropped) == 1 and 'would take both `device=None` and `device="cuda"`' in done.dropped[0]
