"""Property: on generated programs with device calls sprinkled in, --fix never crashes,
always leaves code that parses, and a second --fix changes nothing."""

import ast
import textwrap

import hypothesmith
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devlint.check.snippet import fix_text as fix_source

LEAKS = [
    "x = torch.zeros(3).cuda()",
    "m = model.cuda()",
    "state = torch.load(path)",
    "torch.cuda.synchronize()",
    "s = torch.cuda.Stream()",
    'device = "cuda" if torch.cuda.is_available() else "cpu"',
    'y = x.to("cuda:0")',
    "g = torch.arange(8).type(ref.type())",
    "t = torch.cuda.FloatTensor(2, 3)",
    "net = nn.DataParallel(net)",
    'torch.set_default_device("cuda")',
    "e = torch.cuda.Event(); e.record()",
    "dist.init_process_group('nccl'); dist.barrier()",
    "z = a.type(torch.cuda.FloatTensor)",
    "w = torch.ones(2, 2).to('cuda')",
]

HEADER = "import torch\nimport torch.nn as nn\nimport torch.distributed as dist\n"


def _sprinkle(program: str, picks: list[int], inside_function: bool, with_device: bool) -> str:
    leaks = "\n".join(LEAKS[i] for i in picks)
    if inside_function:
        params = "model, x, ref, path, a, net, device" if with_device else "model, x, ref, path, a, net"
        leaks = f"def leaky({params}):\n" + textwrap.indent(leaks, "    ") + "\n    return x\n"
    return HEADER + program.rstrip("\n") + "\n" + leaks + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    program=hypothesmith.from_grammar(auto_target=False),
    picks=st.lists(st.integers(0, len(LEAKS) - 1), min_size=1, max_size=6),
    inside_function=st.booleans(),
    with_device=st.booleans(),
)
def test_fix_is_total_parses_and_idempotent(program, picks, inside_function, with_device):
    source = _sprinkle(program, picks, inside_function, with_device)
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return  # the generator can produce text this interpreter's parser rejects
    fixed, remaining = fix_source(source, unsafe=True)
    ast.parse(fixed)
    again, _ = fix_source(fixed, unsafe=True)
    assert again == fixed
    if inside_function and with_device and 0 in picks:
        assert "x = torch.zeros(3, device=device)" in fixed  # the fixes did apply
