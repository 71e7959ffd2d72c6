"""GPU scenarios under `devlint run` (aiming at cuda:1): each leak at its line, clean programs
clean, and physical GPU0 untouched by devlint itself. Skipped without two GPUs.

Run on a two-GPU machine:  python -m pytest tests/gpu -v   (or: python tests/gpu/scenario_check.py)
"""

import warnings

import pytest
from scenario_check import SCENARIOS, check, gpu_count, make_checkpoint

pytestmark = pytest.mark.skipif(gpu_count() < 2, reason="needs two GPUs")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint") / "saved_on_cuda0.pt")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario(scenario, checkpoint, tmp_path):
    for warning in check(scenario, tmp_path, checkpoint):
        warnings.warn(warning)
