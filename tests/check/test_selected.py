"""The selected stage: findings in a function whose every caller chose the GPU first are dropped."""

import json
from pathlib import Path

from devlint import catalog
from devlint.check import lint as linter
from devlint.check.discover import discover
from devlint.check.selected import CallerSelections
from devlint.check.suppress import Suppression
from devlint.config import Settings

ALL = frozenset(catalog.load())

TRAIN = """\
import torch


def train(model):
    model = torch.nn.DataParallel(model)
    return model.cuda()
"""
MAIN = """\
import os
import torch
from train import train


def main(opt, model):
    os.environ["CUDA_VISIBLE_DEVICES"] = opt.gpus
    return train(model)
"""
RANK = """\
import torch
from train import train


def worker(rank, model):
    torch.cuda.set_device(rank)
    return train(model)
"""


def _codes(root: Path, files: dict[str, str]) -> list[tuple[str, int, str]]:
    for name, text in files.items():
        (root / name).write_text(text)
    settings = Settings(root=root)
    found, _ = discover([root], settings)
    result = linter.lint(found, Suppression(settings, ALL))
    kept = CallerSelections(result.works, result.index).drop(result.findings)
    return [(Path(f.filename).name, f.location.row, f.code) for f in kept]


def test_callers_that_set_visible_devices_excuse_every_finding_in_the_function(tmp_path):
    assert _codes(tmp_path, {"train.py": TRAIN, "main.py": MAIN}) == []


def test_set_device_excuses_the_current_device_but_not_every_visible_gpu(tmp_path):
    # After set_device(rank), .cuda() is the rank's GPU, but DataParallel still spans GPU0.
    assert _codes(tmp_path, {"train.py": TRAIN, "worker.py": RANK}) == [("train.py", 5, "DL007")]


def test_one_caller_without_a_selection_keeps_the_findings(tmp_path):
    plain = "from train import train\n\n\ndef quick(model):\n    return train(model)\n"
    codes = _codes(tmp_path, {"train.py": TRAIN, "main.py": MAIN, "quick.py": plain})
    assert codes == [("train.py", 5, "DL007"), ("train.py", 6, "DL001")]


def test_a_function_nobody_calls_keeps_its_findings(tmp_path):
    assert _codes(tmp_path, {"train.py": TRAIN}) == [("train.py", 5, "DL007"), ("train.py", 6, "DL001")]


def test_fix_leaves_excused_findings_alone(run_devlint, tmp_path):
    # `.to("cuda")` with `device` in scope has a text fix; its caller made "cuda" the chosen GPU.
    train = "import torch\n\n\ndef train(model, device):\n    return model.to('cuda')\n\n\ndef load(path):\n    return torch.load(path)\n"
    main = MAIN.replace("train(model)", "train(model, 'cuda')")
    (tmp_path / "pyproject.toml").write_text("[tool.devlint]\n")
    (tmp_path / "train.py").write_text(train)
    (tmp_path / "main.py").write_text(main)
    run_devlint("check", tmp_path, "--fix", "--unsafe-fixes", "--no-cache")
    fixed = (tmp_path / "train.py").read_text()
    assert "map_location" in fixed  # the DL005 fix in the same file was applied
    assert "model.to('cuda')" in fixed  # the excused line was not touched


HELPER = """\
import torch


def to_gpu(
    batch,
):
    return batch.cuda()


def step(model, batch):
    return model(to_gpu(batch))
"""


def test_a_selection_two_callers_up_excuses_a_helper_of_a_helper(tmp_path):
    # to_gpu (a multi-line signature) <- step <- worker, which called set_device(rank) first.
    worker = RANK.replace("from train import train", "from helpers import step").replace("train(model)", "step(model, None)")
    assert _codes(tmp_path, {"helpers.py": HELPER, "worker.py": worker}) == []
    # A second caller of step() that selected nothing keeps the finding.
    plain = "from helpers import step\n\n\ndef quick(model):\n    return step(model, None)\n"
    assert _codes(tmp_path, {"helpers.py": HELPER, "worker.py": worker, "quick.py": plain}) == [("helpers.py", 7, "DL001")]


def test_a_lightning_lite_run_method_is_a_selection_for_the_helpers_it_calls(tmp_path):
    lite = (
        "from pytorch_lightning.lite import LightningLite\n"
        "from helpers import step\n\n\n"
        "class Lite(LightningLite):\n"
        "    def run(self, model):\n"
        "        return step(model, None)\n"
    )
    assert _codes(tmp_path, {"helpers.py": HELPER, "train.py": lite}) == []


HEAD = """\
import torch


class Head(torch.nn.Module):
    def sample(self, labels):
        return torch.unique(labels).cuda()

    def forward(self, labels):
        return torch.zeros(3).cuda() + self.sample(labels).sum()
"""


def test_methods_of_a_class_built_only_after_a_selection_are_excused(tmp_path):
    # forward is never called by name (head(x)); sample only from forward. Both run on an
    # instance, and the only one is built by worker() after set_device(rank).
    worker = "import torch\nfrom head import Head\n\n\ndef worker(rank, labels):\n    torch.cuda.set_device(rank)\n    head = Head()\n    return head(labels)\n"
    assert _codes(tmp_path, {"head.py": HEAD, "worker.py": worker}) == []
    # One more construction without a selection: both methods may run on the current device.
    plain = "from head import Head\n\n\ndef quick(labels):\n    return Head()(labels)\n"
    assert _codes(tmp_path, {"head.py": HEAD, "worker.py": worker, "quick.py": plain}) == [
        ("head.py", 6, "DL001"), ("head.py", 9, "DL011"),
    ]


CHECKPOINT = """\
import torch


def load_checkpoint(model, filename, map_location=None):
    state = torch.load(filename, map_location=map_location)
    model.load_state_dict(state)
    return model
"""


def test_a_map_location_parameter_every_call_passes_is_not_reported(tmp_path):
    # mmcv's load_checkpoint(map_location=None): reported at its torch.load while a caller
    # may omit it; not once every call in the project passes it.
    passing = "from ckpt import load_checkpoint\n\n\ndef build(model, path):\n    return load_checkpoint(model, path, map_location='cpu')\n"
    omitting = "from ckpt import load_checkpoint\n\n\ndef quick(model, path):\n    return load_checkpoint(model, path)\n"
    assert _codes(tmp_path, {"ckpt.py": CHECKPOINT}) == [("ckpt.py", 5, "DL005")]
    assert _codes(tmp_path, {"ckpt.py": CHECKPOINT, "build.py": passing}) == []
    assert _codes(tmp_path, {"ckpt.py": CHECKPOINT, "build.py": passing, "quick.py": omitting}) == [("ckpt.py", 5, "DL005")]


def test_a_warm_run_sees_a_new_subclass_and_its_removal(run_devlint, tmp_path):
    """The selected stage's output comes back from the cache while the files it read are
    unchanged; a file that starts (or stops) subclassing Head changes what it read, though
    no finding of the file stages changed, and the cached run must say what a cold one says."""
    worker = "import torch\nfrom head import Head\n\n\ndef worker(rank, labels):\n    torch.cuda.set_device(rank)\n    head = Head()\n    return head(labels)\n"
    (tmp_path / "head.py").write_text(HEAD)
    (tmp_path / "worker.py").write_text(worker)

    def both():
        warm = run_devlint("check", ".", "--output-format", "json", cwd=tmp_path)
        cold = run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=tmp_path)
        assert warm == cold
        return [(Path(f["filename"]).name, f["location"]["row"]) for f in json.loads(warm[1])]

    assert both() == []
    (tmp_path / "sub.py").write_text("from head import Head\n\n\nclass Fast(Head):\n    pass\n")
    assert both() == [("head.py", 6), ("head.py", 9)]
    (tmp_path / "sub.py").write_text("from head import Head\n\n\nclass Fast:\n    pass\n")
    assert both() == []


LAMBDA_UNDER_GROUP = """\
import os
import torch
import torch.distributed as dist


def load(path, device="cuda"):
    return torch.load(path, map_location=device)


def main():
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl")
    pick = lambda p: load(p)
    return pick("w.pt")
"""


def test_a_lambda_in_a_program_whose_process_group_follows_set_device_is_checked(tmp_path):
    # A lambda is a function whose body is one expression, not a list of statements: asking
    # whether it runs only under a process group used to stop the whole run (F5-TTS).
    codes = _codes(tmp_path, {"train.py": LAMBDA_UNDER_GROUP})
    assert not [c for c in codes if c[2] == "DL901"]


def test_a_bug_while_judging_one_finding_keeps_it_and_says_so(tmp_path, monkeypatch):
    def broken(self, finding):
        if finding.location.row == 6:
            raise TypeError("boom")
        return False

    monkeypatch.setattr(CallerSelections, "_excused_in_file", broken)
    codes = _codes(tmp_path, {"train.py": TRAIN})
    assert codes == [("train.py", 5, "DL007"), ("train.py", 6, "DL901"), ("train.py", 6, "DL001")]


def test_a_same_named_function_of_another_module_and_method_calls_do_not_count_as_callers(tmp_path):
    # train.py's `train` runs only after run.py's set_device. train_dp.py has its own `train`
    # (run by run_dp.py, which selects nothing) and calls `model.train()`: neither is a call of
    # train.py's `train`, so its `.cuda()` is the rank's GPU.
    files = {
        "train.py": "def train(model, data):\n    model.train()\n    return model(data.cuda())\n",
        "run.py": (
            "import torch\nfrom train import train\n\nif __name__ == '__main__':\n"
            "    torch.cuda.set_device(1)\n    train(None, torch.zeros(2))\n"
        ),
        "train_dp.py": "def train(model, data, ids):\n    model.train()\n    return model(data)\n",
        "run_dp.py": "from train_dp import train\n\nif __name__ == '__main__':\n    train(None, None, [0])\n",
    }
    assert _codes(tmp_path, files) == []
    # a package that may re-export train.py's `train` is still a caller
    files["run_pkg.py"] = "from tools import train\n\nif __name__ == '__main__':\n    train(None, None)\n"
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("from train import train\n")
    assert _codes(tmp_path, files) == [("train.py", 3, "DL001")]
