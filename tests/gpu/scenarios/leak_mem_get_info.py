"""An argless `torch.cuda.mem_get_info()`."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

intended = torch.ones(1, device="cuda:1")
free, total = torch.cuda.mem_get_info()  # expect: DL006
