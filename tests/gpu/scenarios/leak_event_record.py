"""`Event().record()` records on the current stream of the current device."""
# devlint: --device cuda:1
import _probe  # noqa: F401
import torch

intended = torch.ones(1, device="cuda:1")
done = torch.cuda.Event()
done.record()  # expect: DL006
