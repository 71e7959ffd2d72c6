"""A library class whose device defaults to 'cuda', built without `device`."""
# devlint: --device cuda:1
import os
import sys

import _probe
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "site-packages"))
import facelib_gpu  # noqa: E402

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
enhancer = facelib_gpu.Enhancer("weights.pth")  # expect: DL012
