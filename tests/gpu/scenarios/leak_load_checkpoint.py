"""`torch.load` of a checkpoint saved from cuda:0, without map_location."""
# devlint: --device cuda:1
import os

import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
state = torch.load(os.environ["DEVLINT_CHECKPOINT"])  # expect: DL005
