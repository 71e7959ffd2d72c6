"""`set_device(1)` in the main thread does not carry over to a new thread."""
# devlint: --device cuda:1
import threading

import _probe
import torch

torch.cuda.set_device(_probe.GPU)  # cpu: DL006
intended = torch.ones(1, device="cuda")  # cpu: DL002


def worker():
    torch.cuda.synchronize()  # expect: DL102, cpu: DL006 (with GPU0 selected, no thread misses a selection)


thread = threading.Thread(target=worker)
thread.start()
thread.join()
