"""Property: on generated programs with device calls sprinkled in, --fix never crashes,
always leaves code that parses, and a second --fix changes nothing; structural fixes
across generated modules also leave every call bound to its callee's signature."""

import ast
import inspect
import textwrap

import hypothesmith
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devlint.check.snippet import fix_modules, fix_text as fix_source

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


# --- structural fixes: a device threaded through generated multi-module projects ------

SIGNATURES = ["(x)", "(x, scale=1)", "(x, *args)", "(x, *, scale=1)", "(x, /)", "(\n    x,\n)", "(x,  # the input\n)", "(x: int = 0)"]
SITES = [
    "    y = x.cuda()\n",
    "    enhancer = GFPGANer(model_path='w.pth')\n",
    "    torch.cuda.synchronize()\n",
    "    y = torch.zeros(3).cuda()\n",
    "    net = load_net()\n",  # DL012 with a "cuda" default: meets the sites above in one parameter
]
MODULE_HEADER = (
    "import torch\nfrom gfpgan import GFPGANer\n\n\n"
    "def load_net(device=\"cuda\"):\n    return torch.nn.Linear(2, 2).to(device)\n"
)


@st.composite
def projects(draw):
    """Functions f0..fn spread over modules; each may leak (several times: their threaded
    fixes meet in one parameter) and may call earlier ones;
    callers with a device (a `device` parameter, `self.device`) and without (module level)."""
    n = draw(st.integers(2, 6))
    modules = draw(st.integers(1, 3))
    home = [draw(st.integers(0, modules - 1)) for _ in range(n)]
    bodies = {m: [MODULE_HEADER] for m in range(modules)}
    for i in range(n):
        sig = draw(st.sampled_from(SIGNATURES))
        lines = [SITES[k] for k in draw(st.lists(st.integers(0, len(SITES) - 1), max_size=5))]  # several leaks meet
        for j in draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=2)) if i else []:
            lines.append(f"    y = f{j}(x)\n")
        bodies[home[i]].append(f"\n\ndef f{i}{sig}:\n" + "".join(lines) + "    return x\n")
    for i in range(n):
        kind = draw(st.sampled_from(["param", "method", "module", "none"]))
        m = home[i]
        if kind == "param":
            bodies[m].append(f"\n\ndef use{i}(x, device):\n    return f{i}(x)\n")
        elif kind == "method":
            bodies[m].append(f"\n\nclass Use{i}:\n    def __init__(self, device):\n        self.device = device\n\n    def run(self, x):\n        return f{i}(x)\n")
        elif kind == "module":
            bodies[m].append(f"\n\nf{i}(0)\n")
    for m in range(modules):
        imports = "".join(f"from m{home[i]} import f{i}\n" for i in range(n) if home[i] != m)
        bodies[m].insert(1, imports)
    return {f"m{m}.py": "".join(body) for m, body in bodies.items()}


def _signature(node: ast.FunctionDef) -> inspect.Signature:
    a = node.args
    params = []
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        kind = inspect.Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs) else inspect.Parameter.POSITIONAL_OR_KEYWORD
        params.append(inspect.Parameter(arg.arg, kind, default=inspect.Parameter.empty if default is None else 0))
    if a.vararg:
        params.append(inspect.Parameter(a.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        params.append(inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY, default=inspect.Parameter.empty if default is None else 0))
    if a.kwarg:
        params.append(inspect.Parameter(a.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def _every_call_binds(texts: dict[str, str]) -> int:
    """Each call of a generated function binds to its (possibly new) signature; returns
    how many calls pass `device=`."""
    trees = [ast.parse(t) for t in texts.values()]
    defs: dict[str, list] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs.setdefault(node.name, []).append(node)
    passing = 0
    for tree in trees:
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id[:1] == "f"):
                continue
            found = defs.get(call.func.id, [])
            if len(found) != 1 or any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
                continue
            _signature(found[0]).bind(*[0] * len(call.args), **{k.arg: 0 for k in call.keywords})
            passing += any(k.arg == "device" for k in call.keywords)
    return passing


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=projects(), junk=hypothesmith.from_grammar(auto_target=False))
def test_structural_fixes_parse_bind_and_are_idempotent(texts, junk):
    texts = {**texts, "m0.py": texts["m0.py"] + "\n" + junk}  # arbitrary code beside the generated functions
    try:
        for text in texts.values():
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return  # the generator can produce text this interpreter's parser rejects
    fixed, _ = fix_modules(texts, unsafe=True)
    for text in fixed.values():
        ast.parse(text)
    _every_call_binds(fixed)
    again, _ = fix_modules(fixed, unsafe=True)
    assert again == fixed


def test_a_generated_project_is_threaded():
    """The property above is not vacuous: a leaking helper called by a method with
    self.device in another module gets the device passed."""
    texts = {
        "m0.py": MODULE_HEADER + "\n\ndef f0(\n    x,\n):\n" + SITES[0] + "    return x\n",
        "m1.py": MODULE_HEADER + "from m0 import f0\n\n\nclass Use0:\n    def __init__(self, device):\n        self.device = device\n\n    def run(self, x):\n        return f0(x)\n",
    }
    fixed, remaining = fix_modules(texts, unsafe=True)
    assert "    x,\n    device=None,\n):" in fixed["m0.py"] and "x.cuda(device)" in fixed["m0.py"]
    assert "f0(x, device=self.device)" in fixed["m1.py"]
    assert _every_call_binds(fixed) == 1
    assert remaining == []
