"""`nn.Module.to("cuda")`: every parameter goes to the current device."""
# devlint: --device cuda:1
import _probe
import torch

intended = torch.ones(1, device=_probe.INTENDED)  # cpu: DL008
model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).to("cuda")  # expect: DL002
