"""Library entry points whose device option, left out or set to GPU 0, puts work on GPU 0.

The rules on the Hugging Face stack and video encoders (DL021-DL026) are sinks over a table
each, kept in their catalog files as `[[api.entry_points]]` rows: which calls (qualified
names, fnmatch patterns allowed, or method names on receivers devlint cannot type), which
keyword chooses the device and at which position, and what leaving it out gives. The
runtime half reads the same rows to name the entry point and its option in a suggestion.
This module matches a call against a rule's rows and finds the device the program has for
a fix; the rules keep only what differs between them (which values leak).
"""

from __future__ import annotations

import ast
import fnmatch
import functools
from dataclasses import dataclass

from devlint import catalog
from devlint.static import options
from devlint.static.context import FileContext
from devlint.static.names import argument


@dataclass(frozen=True)
class EntryPoint:
    """One `[[api.entry_points]]` row of a rule."""

    library: str
    names: tuple[str, ...]  # qualified names or patterns: "transformers.pipeline", "peft.*.from_pretrained"
    methods: tuple[str, ...]  # method names matched on any receiver ("enable_model_cpu_offload")
    option: str  # the keyword that chooses the device ("device", "device_map", "torch_device")
    position: int | None  # its position at the call (self excluded), if it can be passed positionally
    index_option: str | None  # a keyword taking a GPU index instead ("gpu_id"), if any
    index_position: int | None  # its position at the call, if it can be passed positionally
    omitted: str  # what leaving the option out gives, e.g. "cuda:0"
    cite: str  # library version and file:line of that behaviour
    default: str | None = None  # the option's own default, where it is a value the rule judges ("balanced")

    def matches(self, qualname: str | None, call: ast.Call) -> bool:
        if qualname is not None and any(fnmatch.fnmatchcase(qualname, pattern) for pattern in self.names):
            return True
        func = call.func
        return isinstance(func, ast.Attribute) and func.attr in self.methods

    def given(self, call: ast.Call) -> ast.expr | None:
        """The expression passed for the option (or its index twin), if any."""
        found = argument(call, self.option, self.position)
        if found is None and self.index_option:
            found = argument(call, self.index_option, self.index_position)
        return found


@functools.cache
def of(code: str) -> tuple[EntryPoint, ...]:
    """A rule's entry points, from its catalog file."""
    return tuple(
        EntryPoint(
            library=row["library"],
            names=tuple(row.get("names", ())),
            methods=tuple(row.get("methods", ())),
            option=row["option"],
            position=row.get("position"),
            index_option=row.get("index_option"),
            index_position=row.get("index_position"),
            omitted=row.get("omitted", ""),
            cite=row.get("cite", ""),
            default=row.get("default"),
        )
        for row in catalog.api(code, "entry_points", [])
    )


def matching(code: str, call: ast.Call, ctx: FileContext) -> EntryPoint | None:
    """The row of rule `code` that `call` is an instance of."""
    qualname = ctx.qualname(call.func)
    for entry in of(code):
        if entry.matches(qualname, call):
            return entry
    return None


@dataclass(frozen=True)
class Chosen:
    """The device the program has at a call, as source text."""

    expr: str  # "device", "args.device", "args.gpu"
    is_index: bool  # an int GPU index rather than a device
    why: str

    def as_string(self) -> str:
        """The value written where a device string is expected (`"cuda:1"`)."""
        return f'f"cuda:{{{self.expr}}}"' if self.is_index else f"str({self.expr})"


def chosen_device(ctx: FileContext, node: ast.AST) -> Chosen | None:
    """The device the program was told to use, in scope at `node`: a device (`device`,
    `self.device`, `args.device`) or a GPU index (`gpu_id`, `args.gpu`, `local_rank`)."""
    found = ctx.suggest_device(node)
    if found is not None:
        return Chosen(found.expr, False, f"the device in scope, `{found.expr}`")
    index = ctx.suggest_index(node)
    if index is not None:
        return Chosen(index, True, f"the GPU index the program was given, `{index}`")
    source = options.source_of_device(node, ctx)
    if source is not None:
        return Chosen(source.expr, not source.is_device, source.why)
    return None


def manual_step(ctx: FileContext, use: str) -> str:
    """What the user must do when the program has no device to pass: give it one (in the
    module's own argument parser, when it has one)."""
    parser = options.argument_parser(ctx)
    where = f"to the argument parser ({parser[1]})" if parser else "to the program"
    name = parser[0] if parser else "parser"
    return (
        f"the program has no device to pass here. The one manual step: add `{name}.add_argument(\"--device\", "
        f"default=\"cuda:0\")` {where} and pass {use} with `args.device`, or launch with CUDA_VISIBLE_DEVICES "
        "set to the GPU to use"
    )
