"""Every call names cuda:1."""
# devlint: --device cuda:1
import os
import sys

import _probe  # noqa: F401
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "site-packages"))
import facelib_gpu  # noqa: E402

device = torch.device("cuda", 1)
x = torch.ones(4).cuda(1)
y = torch.ones(4).to("cuda:1")
z = torch.zeros(4, device=device)
model = torch.nn.Linear(8, 8).to(device)
out = model(torch.randn(2, 8, device=device))
torch.cuda.synchronize(device)
side = torch.cuda.Stream(device=device)
done = torch.cuda.Event()
done.record(torch.cuda.current_stream(device))
free, total = torch.cuda.mem_get_info(device)
state = torch.load(os.environ["DEVLINT_CHECKPOINT"], map_location=device)
enhancer = facelib_gpu.Enhancer(device=device)
with torch.device(device):
    w = torch.zeros(4)
