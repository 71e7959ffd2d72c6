"""A per-GPU worker class (vLLM's Worker) makes its own device current in a set-up method;
its other methods, and those of the classes it builds, run after that."""

from devlint.check.snippet import lint_modules

WORKER = """\
import torch
from engine.runner import ModelRunner


class Worker:
    def __init__(self, config, device):
        self.device = device
        self.model_runner = ModelRunner(config)

    def init_model(self):
        torch.cuda.empty_cache()
        torch.cuda.set_device(self.device)
        torch.cuda.synchronize()

    def execute_model(self, batch):
        torch.cuda.synchronize()
        return self.model_runner.execute_model(batch)
"""

RUNNER = """\
import torch


class ModelRunner:
    def __init__(self, config):
        self.config = config

    def execute_model(self, tokens):
        positions = torch.tensor(tokens, dtype=torch.long, device="cuda")
        return positions
"""


def _found(worker: str) -> list[tuple[str, int, str]]:
    modules = {"engine/__init__.py": "", "engine/worker.py": worker, "engine/runner.py": RUNNER}
    return sorted((f.filename, f.location.row, f.code) for f in lint_modules(modules))


def test_the_worker_and_the_runner_it_builds_run_on_the_worker_device():
    assert _found(WORKER) == []


def test_a_set_device_of_a_parameter_selects_for_that_call_only():
    per_call = WORKER.replace("    def init_model(self):", "    def init_model(self, gpu_idx):").replace(
        "torch.cuda.set_device(self.device)", "torch.cuda.set_device(gpu_idx)"
    )
    found = _found(per_call)
    assert ("engine/runner.py", 9, "DL002") in found
    assert ("engine/worker.py", 16, "DL006") in found
