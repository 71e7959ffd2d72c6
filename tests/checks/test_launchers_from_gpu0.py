"""DL007's launchers say how many GPUs they start a process on, counted from GPU0."""

from devlint.check.snippet import lint_modules


def _messages(code: str) -> list[str]:
    return [f.message for f in lint_modules({"train.py": code}) if f.code == "DL007"]


def test_a_trainer_names_the_gpus_it_takes():
    code = (
        "import lightning as L\n\n"
        "one = L.Trainer(accelerator='gpu', devices=1)\n"
        "two = L.Trainer(accelerator='gpu', devices=2)\n"
        "every = L.Trainer(accelerator='gpu', devices='auto')\n"
    )
    assert _messages(code) == [
        "`L.Trainer(devices=1)` starts a process on the first visible GPU, from GPU0: no option chooses the GPU",
        "`L.Trainer(devices=2)` starts a process on the first 2 visible GPUs, from GPU0: no option chooses the GPU",
        "`L.Trainer(devices='auto')` starts a process on every visible GPU, from GPU0: no option chooses the GPU",
    ]


def test_a_spawn_over_the_device_count_is_every_visible_gpu():
    code = (
        "import torch\nimport torch.multiprocessing as mp\n\n\n"
        "def run(rank):\n    torch.cuda.set_device(rank)\n\n\n"
        "world_size = torch.cuda.device_count()\nmp.spawn(run, nprocs=world_size)\n"
    )
    assert _messages(code) == [
        "`mp.spawn(..., nprocs=world_size)` starts a process on every visible GPU, from GPU0: no option chooses the GPU"
    ]
