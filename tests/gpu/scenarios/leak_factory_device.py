"""`device="cuda"` in a factory."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
x = torch.zeros(1024, device="cuda")  # expect: DL002
