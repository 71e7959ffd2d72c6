"""A CPU-only program: no CUDA initialisation, no context anywhere."""
# devlint: --device cuda:1
# cpu: clean (no CUDA at all, so also clean with only the CPU allowed)
import _probe  # noqa: F401
import torch

model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(4))
with torch.inference_mode():
    out = model(torch.randn(2, 3, 16, 16))
assert not torch.cuda.is_initialized()
