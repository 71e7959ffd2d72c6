"""An argless `torch.cuda.synchronize()`."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

intended = torch.ones(1, device="cuda:1")
torch.cuda.synchronize()  # expect: DL006
