"""GPU scenarios under `devlint run`, in both tracing modes: each leak at its line, clean
programs clean, and physical GPU0 untouched by devlint itself.

Aiming at cuda:1, they need two GPUs; with only the CPU allowed (every CUDA touch a leak),
one GPU is enough. Skipped without GPUs.

    python -m pytest tests/gpu -v                                          # two GPUs
    python -m pytest tests/gpu/test_scenarios.py -k only_the_cpu -v        # one GPU is enough
    (or: python tests/gpu/scenario_check.py [--allowed cpu] [--thorough])
"""

import warnings

import pytest
from scenario_check import SCENARIOS, check, gpu_count, make_checkpoint, parse

MODES = pytest.mark.parametrize("thorough", [False, True], ids=["default", "thorough"])
CPU_SCENARIOS = [s for s in SCENARIOS if parse(s, "cpu").runs]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint") / "saved_on_cuda0.pt")


@pytest.mark.skipif(gpu_count() < 2, reason="needs two GPUs")
@MODES
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario(scenario, thorough, checkpoint, tmp_path):
    for warning in check(scenario, tmp_path, checkpoint, thorough=thorough):
        warnings.warn(warning)


@pytest.mark.skipif(gpu_count() < 1, reason="needs a GPU")
@MODES
@pytest.mark.parametrize("scenario", CPU_SCENARIOS, ids=[s.stem for s in CPU_SCENARIOS])
def test_scenario_with_only_the_cpu_allowed(scenario, thorough, checkpoint, tmp_path):
    for warning in check(scenario, tmp_path, checkpoint, "cpu", thorough=thorough):
        warnings.warn(warning)
