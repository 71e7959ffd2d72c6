"""Where a program lets its user choose the GPU, for the fixes of device-selection lines.

A line such as `device = "cuda" if torch.cuda.is_available() else "cpu"` picks the
current device, GPU0. Its fix builds the device from what the user already gives the
program: a GPU index in scope (`local_rank`, `args.gpu`), an argparse option (`--gpu`,
`--gpu_id`, `--local_rank`, `--device`). Comparisons of the chosen value with `"cuda"`
would turn false for `"cuda:1"`, so the same fix keeps them true. When the program
offers no choice, the fix is the one manual step, shown exactly: a `--device` option.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from devlint.findings import Edit
from devlint.static.context import FileContext
from devlint.static.values import names_a_device
from devlint.static.names import encloses
from devlint.static.suggest import INDEX_NAMES


@dataclass(frozen=True)
class Source:
    expr: str  # e.g. "args.gpu_id", "local_rank", "args.device"
    is_device: bool  # a device (`--device cuda:1`) rather than an index
    why: str


@dataclass(frozen=True)
class _Option:
    dest: str
    flag: str
    parser: str  # the parser's name, e.g. "parser"
    line: int


def _options(ctx: FileContext) -> list[_Option]:
    """`parser.add_argument("--gpu-id", ...)` calls of this module, once per file."""

    def collect() -> list[_Option]:
        found = []
        for node in ast.walk(ctx.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"):
                continue
            flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            long = [f for f in flags if f.startswith("--")] or [f for f in flags if not f.startswith("-")]
            if not long:
                continue
            dest = next((kw.value.value for kw in node.keywords if kw.arg == "dest" and isinstance(kw.value, ast.Constant)), None)
            dest = dest or long[0].lstrip("-").replace("-", "_")
            parser = node.func.value.id if isinstance(node.func.value, ast.Name) else "parser"
            found.append(_Option(dest, long[0], parser, node.lineno))
        return found

    return ctx.memo("argparse options", collect)


def _parsed_names(ctx: FileContext) -> list[str]:
    """Names bound to `X.parse_args()` that code at the current position can read."""
    names = []
    scope = ctx.scope
    while scope is not None:
        names += scope.names_assigned(_parses_args)
        scope = scope.parent
    return names


def _parses_args(value: ast.expr) -> bool:
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in ("parse_args", "parse_known_args")


def source_of_device(literal: ast.AST, ctx: FileContext) -> Source | None:
    index = ctx.suggest_index(literal)
    if index is not None:
        return Source(index, False, "the GPU index the program was given")
    parsed = _parsed_names(ctx)
    if not parsed:
        return None
    for option in _options(ctx):
        if option.dest in INDEX_NAMES:
            return Source(f"{parsed[0]}.{option.dest}", False, f"the GPU the user gives with `{option.flag}`")
    for option in _options(ctx):
        if names_a_device(option.dest):
            return Source(f"{parsed[0]}.{option.dest}", True, f"the device the user gives with `{option.flag}`")
    return None


def argument_parser(ctx: FileContext) -> tuple[str, str] | None:
    """(the parser's name, `file:line` of its first option) when the module parses options."""
    first = next(iter(_options(ctx)), None)
    return (first.parser, f"{ctx.filename}:{first.line}") if first is not None else None


def manual_step(literal: ast.AST, ctx: FileContext) -> str:
    """The one edit only the user can make: let the program be told which GPU to use."""
    value = ctx.text(literal)
    parser = next(iter(_options(ctx)), None)
    parsed = _parsed_names(ctx)
    if parser is not None and parsed:
        return (
            f"the one manual step: add `{parser.parser}.add_argument(\"--device\", default={value})` to the "
            f"argument parser ({ctx.filename}:{parser.line}) and use `{parsed[0]}.device` here instead of `{value}`; "
            "every function that takes `device` then follows it (or launch with CUDA_VISIBLE_DEVICES)"
        )
    return (
        f"the one manual step: let the user choose the GPU, e.g. a `--device` option or "
        f"`os.environ.get(\"DEVICE\", {value})` instead of `{value}`; every function that takes `device` "
        "then follows it (or launch with CUDA_VISIBLE_DEVICES)"
    )


def _chosen_into(literal: ast.AST, ctx: FileContext) -> str | None:
    """The name or attribute a device-selection line assigns (`device`, `args.device`)."""
    for node in ast.walk(ctx.tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and encloses(node.value, literal):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if len(targets) == 1 and isinstance(targets[0], (ast.Name, ast.Attribute)):
                return ctx.text(targets[0])
            return None
    return None


def comparisons_kept_true(literal: ast.AST, ctx: FileContext) -> list[Edit]:
    """`device == "cuda"` -> `str(device).startswith("cuda")` for the value this line
    chooses (`"cuda" in device` and `.startswith("cuda")` stay true on their own)."""
    chosen = _chosen_into(literal, ctx)
    if chosen is None:
        return []
    edits = []
    for node in ast.walk(ctx.tree):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq))):
            continue
        left, right = node.left, node.comparators[0]
        sides = [(left, right), (right, left)]
        for value, other in sides:
            if isinstance(other, ast.Constant) and other.value == "cuda" and ctx.text(value) == chosen:
                test = f'str({chosen}).startswith("cuda")'
                edits.append(ctx.replace(node, test if isinstance(node.ops[0], ast.Eq) else f"not {test}"))
                break
    return edits
