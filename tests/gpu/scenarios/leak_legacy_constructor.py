"""`torch.cuda.FloatTensor(n)` allocates on the current device."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
labels = torch.cuda.FloatTensor(16).fill_(1.0)  # expect: DL004
assert isinstance(labels, torch.cuda.FloatTensor)
