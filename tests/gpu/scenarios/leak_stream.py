"""`torch.cuda.Stream()` without a device."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

intended = torch.ones(1, device="cuda:1")
side = torch.cuda.Stream()  # expect: DL006
