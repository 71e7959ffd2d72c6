"""`torch.set_default_device("cuda")`: factories then use the current device."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
torch.set_default_device("cuda")  # expect: DL010
x = torch.zeros(16)  # expect: DL010
