"""`device="cuda"` in a factory."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

intended = torch.ones(1, device="cuda:1")
x = torch.zeros(1024, device="cuda")  # expect: DL002
