"""Work inside `with torch.cuda.device(1)`."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

with torch.cuda.device(1):
    x = torch.ones(4).cuda()
    y = torch.zeros(4, device="cuda")
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    free, total = torch.cuda.mem_get_info()
