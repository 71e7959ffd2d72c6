"""`Event().record()` records on the current stream of the current device."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
done = torch.cuda.Event()
done.record()  # expect: DL006
