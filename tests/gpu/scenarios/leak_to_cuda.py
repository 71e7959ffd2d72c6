"""`.to("cuda")`: the unindexed string is the current device."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
x = torch.ones(4).to("cuda")  # expect: DL002
