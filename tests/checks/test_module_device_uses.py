"""Where a module-level device is used in code that has a better one (issue 22).

A model file's own `device = "cuda"` used in a torch module's `forward` is reported at each
use and fixed to the input's device; a class whose own device is a literal it writes itself is
no better a choice, and code that is not a torch module's method is judged once, where the
device is chosen.
"""

import textwrap

from devlint.check.snippet import fix_text, lint_text

_MODULE_DEVICE = 'import torch\nfrom torch import nn\n\ndevice = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n'


def _dl002_lines(body: str) -> list[int]:
    return sorted(f.location.row for f in lint_text(_MODULE_DEVICE + textwrap.dedent(body)) if f.code == "DL002")


def test_each_use_in_forward_is_reported_and_fixed_to_the_input_device():
    body = """
    class PositionalEncoder(nn.Module):
        def forward(self, x):
            seq_len = x.size(1)
            pe = torch.zeros(1, seq_len, 8).to(device)
            return x + pe

    class SpeakerHead(nn.Module):
        def forward(self, au, emb):
            spk = self.encoder(emb)
            z = torch.randn(au.shape[0], 16).to(device)
            return torch.cat((self.audio(au), spk, z), dim=1)
    """
    assert _dl002_lines(body) == [4, 9, 15]
    fixed, remaining = fix_text(_MODULE_DEVICE + textwrap.dedent(body), unsafe=True)
    assert "torch.zeros(1, seq_len, 8).to(x.device)" in fixed
    assert "torch.randn(au.shape[0], 16).to(au.device)" in fixed
    # The module-level choice, which no code reads once both uses are fixed, chooses nothing.
    assert [f.location.row for f in remaining if f.code == "DL002"] == []


def test_an_own_device_the_class_writes_as_a_literal_is_not_offered_instead():
    body = """
    class Block:
        def __init__(self):
            self.device = torch.device("cuda:0")
            self.net = nn.Linear(2, 2).to(device)

        def step(self, batch):
            return self.net(batch.to(device))
    """
    assert _dl002_lines(body) == [4]


def test_an_own_device_the_caller_gives_is_still_offered():
    body = """
    class Block:
        def __init__(self, device):
            self.device = device

        def step(self, batch):
            return batch.to(device)
    """
    assert _dl002_lines(body) == [4, 11]


def test_uses_outside_a_torch_module_or_without_a_tensor_input_are_judged_at_the_choice():
    body = """
    class Driver:
        def run(self, batch):
            return batch.reshape(-1).to(device)

    class Head(nn.Module):
        def forward(self, options):
            return torch.zeros(options["n"]).to(device)

    def preprocess(image):
        return torch.from_numpy(image.transpose(2, 0, 1)).to(device)
    """
    assert _dl002_lines(body) == [4]
