"""`set_device(1)` in the main thread does not carry over to a new thread."""
# devlint: --device cuda:1
import threading

import _probe  # noqa: F401
import torch

torch.cuda.set_device(1)
intended = torch.ones(1, device="cuda")


def worker():
    torch.cuda.synchronize()  # expect: DL102


thread = threading.Thread(target=worker)
thread.start()
thread.join()
