"""`.to("cuda")`: the unindexed string is the current device."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

intended = torch.ones(1, device="cuda:1")
x = torch.ones(4).to("cuda")  # expect: DL002
