"""Fuzz target for the static half: mutated real files and generated modules through the
check and fix pipelines. Asserts what a user relies on whatever the input: no internal
error (any exception), fixed output that compiles, and a second --fix that changes nothing.

CI runs it with a few examples (this file); `python benchmarks/fuzz.py --minutes 10 [DIR]`
runs the same target longer, seeded also with the Python files under DIR.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import hypothesmith
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devlint.check.snippet import fix_modules, lint_modules

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# Extra seed directories (benchmarks/fuzz.py sets it from its command line).
SEED_DIRS = [Path(p) for p in os.environ.get("DEVLINT_FUZZ_SEEDS", "").split(os.pathsep) if p]
MAX_SEED_BYTES = 60_000  # larger files make each example slow and find nothing more

# Lines a mutation may insert: each one a leak some rule fixes, or code around them.
SNIPPETS = [
    "x = torch.zeros(3).cuda()",
    "model = model.cuda()",
    "state = torch.load(path)",
    "torch.cuda.synchronize()",
    'device = "cuda" if torch.cuda.is_available() else "cpu"',
    'y = x.to("cuda:0")',
    "g = torch.arange(8).type(x.type())",
    "t = torch.cuda.FloatTensor(2, 3)",
    "net = torch.nn.DataParallel(net)",
    'torch.set_default_device("cuda")',
    "dist.init_process_group('nccl')",
    'os.environ["CUDA_VISIBLE_DEVICES"] = "1"',
    "torch.cuda.set_device(rank)",
    "if device is None:",
    "return x",
    "def helper(x, device=None):",
    "class Net(torch.nn.Module):",
    "    pass",
    "# noqa: DL001",
]


def seed_files() -> list[str]:
    paths = sorted(FIXTURES.rglob("*.py")) + [p for d in SEED_DIRS for p in sorted(d.rglob("*.py"))]
    texts = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if len(data) <= MAX_SEED_BYTES:
            texts.append(data.decode("utf-8", "replace"))
    return texts


SEEDS = seed_files()
COUNT = {"inputs": 0}


def mutate(text: str, edits: list[tuple[int, int, int]]) -> str:
    """Apply line edits (kind, position, argument): insert a snippet at the line's indentation,
    delete, duplicate or swap lines, cut the text, or drop a character."""
    lines = text.splitlines(keepends=True) or [""]
    for kind, position, argument in edits:
        i = position % len(lines)
        if kind == 0:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines.insert(i, indent + SNIPPETS[argument % len(SNIPPETS)] + "\n")
        elif kind == 1 and len(lines) > 1:
            del lines[i]
        elif kind == 2:
            lines.insert(i, lines[i])
        elif kind == 3:
            j = argument % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 4:
            lines = lines[: max(1, i)]
        elif kind == 5 and lines[i]:
            k = argument % len(lines[i])
            lines[i] = lines[i][:k] + lines[i][k + 1 :]
    return "".join(lines)


def compiles(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "fuzzed.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def check_pipelines(modules: dict[str, str]) -> None:
    """The property: lint and fix never raise; output compiles when the input did; fixing is idempotent."""
    COUNT["inputs"] += 1
    lint_modules(modules)
    fixed, _ = fix_modules(modules, unsafe=True)
    for name, text in fixed.items():
        if compiles(modules[name]):
            assert compiles(text), f"{name}: the fixed text does not compile"
    again, _ = fix_modules(fixed, unsafe=True)
    assert again == fixed, "a second --fix changed the files"


edits = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10_000), st.integers(0, 10_000)), max_size=8)


@settings(max_examples=int(os.environ.get("DEVLINT_FUZZ_EXAMPLES", "25")), deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.sampled_from(SEEDS), first=edits, other=st.sampled_from(SEEDS), second=edits)
def test_mutated_real_files(seed, first, other, second):
    """Two mutated files checked as one project (imports between them may resolve)."""
    check_pipelines({"a.py": mutate(seed, first), "b.py": mutate(other, second)})


@settings(max_examples=int(os.environ.get("DEVLINT_FUZZ_EXAMPLES", "25")), deadline=None, suppress_health_check=list(HealthCheck))
@given(program=hypothesmith.from_grammar(auto_target=False), leaks=edits)
def test_generated_modules(program, leaks):
    """A generated module with leaks inserted into it."""
    text = "import os\nimport torch\nimport torch.distributed as dist\n" + program
    check_pipelines({"generated.py": mutate(text, [(0, p, a) for _, p, a in leaks])})
