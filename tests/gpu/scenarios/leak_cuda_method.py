"""`.cuda()` without an index in a program meant for cuda:1."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
x = torch.ones(4).cuda()  # expect: DL001
