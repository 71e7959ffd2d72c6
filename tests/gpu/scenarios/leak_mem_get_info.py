"""An argless `torch.cuda.mem_get_info()`."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
free, total = torch.cuda.mem_get_info()  # expect: DL006
