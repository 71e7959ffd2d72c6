"""Where a module-level device is used in code that has a better one (issue 22).

A class whose own device is a literal it writes itself is no better a choice than the module's:
the module's device is then judged once, where it is chosen.
"""

import textwrap

from devlint.check.snippet import lint_text

_MODULE_DEVICE = 'import torch\nfrom torch import nn\n\ndevice = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n'


def _dl002_lines(body: str) -> list[int]:
    return sorted(f.location.row for f in lint_text(_MODULE_DEVICE + textwrap.dedent(body)) if f.code == "DL002")


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
