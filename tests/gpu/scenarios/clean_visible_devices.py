"""CUDA_VISIBLE_DEVICES=1 before the process starts: "cuda" is physical GPU 1."""
# devlint: --device auto
# env: CUDA_VISIBLE_DEVICES=1
import _probe  # noqa: F401
import torch

x = torch.ones(4).cuda()
y = torch.zeros(4, device="cuda")
torch.cuda.synchronize()
side = torch.cuda.Stream()
torch.cuda.Event().record()
free, total = torch.cuda.mem_get_info()
