"""`type_as` and `new_*` follow the reference tensor's device."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

reference = torch.ones(4, device="cuda:1")
grid = torch.arange(4).type_as(reference)
blank = reference.new_zeros(3)
same = torch.zeros_like(reference)
data = reference.new_tensor([1.0, 2.0])
