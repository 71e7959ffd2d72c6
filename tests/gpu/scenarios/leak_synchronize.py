"""An argless `torch.cuda.synchronize()`."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
torch.cuda.synchronize()  # expect: DL006
