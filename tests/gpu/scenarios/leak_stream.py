"""`torch.cuda.Stream()` without a device."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
side = torch.cuda.Stream()  # expect: DL006
