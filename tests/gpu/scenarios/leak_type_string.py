"""`.type(x.type())`: the type string of a cuda:1 tensor has no index."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

reference = torch.ones(4, device="cuda:1")
grid = torch.arange(4).type(reference.type())  # expect: DL003
