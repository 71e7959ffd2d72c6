"""`.type(x.type())`: the type string of a cuda:1 tensor has no index."""
# devlint: --device cuda:1
import _probe
import torch

reference = torch.ones(4, device=_probe.INTENDED)  # cpu: DL008
grid = torch.arange(4).type(reference.type())  # expect: DL003
