"""`torch.cuda.set_device(1)` first: the current device is the chosen one."""
# devlint: --device cuda:1
import os
import sys

import _probe  # noqa: F401
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "site-packages"))
import facelib_gpu  # noqa: E402

torch.cuda.set_device(1)
x = torch.ones(4).cuda()
y = torch.ones(4).to("cuda")
z = torch.zeros(4, device="cuda")
model = torch.nn.Linear(8, 8).cuda()
torch.cuda.synchronize()
side = torch.cuda.Stream()
torch.cuda.Event().record()
free, total = torch.cuda.mem_get_info()
labels = torch.cuda.FloatTensor(4)
enhancer = facelib_gpu.Enhancer()
