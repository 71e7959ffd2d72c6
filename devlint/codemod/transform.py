"""The libcst transformer that carries out a plan's operations on one file.

Operations name their nodes by position (the `def` of a function, the callee expression
of a call), as the `ast` analysis saw them; the transformer finds the same nodes through
libcst's PositionProvider. An operation that finds no node, or a result that is not
valid Python, fails the whole file: the caller then drops the fix, never half of it.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from devlint.codemod.errors import CodemodError
from devlint.findings import AddArgument, AddParameter, Operation, Span

_NO_SPACE = cst.SimpleWhitespace("")


def _key(start: tuple[int, int], end: tuple[int, int] | None = None):
    """Operation positions are 1-based columns; libcst's are 0-based."""
    start = (start[0], start[1] - 1)
    return start if end is None else (start, (end[0], end[1] - 1))


def _element_indent(elements: list, opening) -> cst.SimpleWhitespace | None:
    """The indentation of one element per line, as the list already writes it."""
    if len(elements) >= 2 and isinstance(elements[-2].comma, cst.Comma):
        between = elements[-2].comma.whitespace_after
        if isinstance(between, cst.ParenthesizedWhitespace):
            return between.last_line
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return opening.last_line
    return None


def _appended(elements: list, new, opening) -> tuple[list, object]:
    """`elements` and `new` to write after them. A trailing comma stays trailing: the last
    element keeps its comma (and a comment after it) and `new` gets the closing layout."""
    if not elements:
        return elements, new
    last = elements[-1]
    if not isinstance(last.comma, cst.Comma):
        between = elements[-2].comma.whitespace_after if len(elements) >= 2 and isinstance(elements[-2].comma, cst.Comma) else None
        if not isinstance(between, cst.ParenthesizedWhitespace):
            return elements, new  # all on one line: libcst writes ", "
        indent = between.last_line
        one_per_line = cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True, last_line=indent)
        return [*elements[:-1], last.with_changes(comma=cst.Comma(whitespace_after=one_per_line))], new
    trailing = last.comma.whitespace_after
    if isinstance(trailing, cst.ParenthesizedWhitespace):
        indent = _element_indent(elements, opening)
        between = trailing.with_changes(last_line=indent) if indent is not None else trailing
        closing = trailing.with_changes(first_line=cst.TrailingWhitespace(newline=trailing.first_line.newline), empty_lines=[])
        last = last.with_changes(comma=last.comma.with_changes(whitespace_after=between))
        return [*elements[:-1], last], new.with_changes(comma=last.comma.with_changes(whitespace_after=closing))
    last_comma = last.comma
    return [*elements[:-1], last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))], new.with_changes(comma=last_comma)


def _printed_params(params: cst.Parameters) -> list:
    """Every element of a signature in the order it is written."""
    out: list = [*params.posonly_params]
    if isinstance(params.posonly_ind, cst.ParamSlash):
        out.append(params.posonly_ind)
    out.extend(params.params)
    if isinstance(params.star_arg, (cst.Param, cst.ParamStar)):
        out.append(params.star_arg)
    out.extend(params.kwonly_params)
    return out


def _with_parameter(function: cst.FunctionDef, op: AddParameter) -> cst.FunctionDef:
    params = function.params
    if params.star_kwarg is not None and not isinstance(params.star_kwarg, cst.MaybeSentinel):
        raise CodemodError(f"`{op.function}` takes **kwargs")
    new = cst.Param(
        name=cst.Name(op.name),
        default=cst.parse_expression(op.default),
        equal=cst.AssignEqual(whitespace_before=_NO_SPACE, whitespace_after=_NO_SPACE),
    )
    printed = _printed_params(params)
    rest, new = _appended(printed, new, function.whitespace_before_params)
    # Hand the separator change back to the group the last element belongs to.
    if printed and rest[-1] is not printed[-1]:
        params = _replace_element(params, printed[-1], rest[-1])
    keyword_only = isinstance(params.star_arg, (cst.Param, cst.ParamStar)) or bool(params.kwonly_params)
    if keyword_only:
        params = params.with_changes(kwonly_params=[*params.kwonly_params, new])
    else:
        params = params.with_changes(params=[*params.params, new])
    return function.with_changes(params=params)


def _replace_element(params: cst.Parameters, old, new) -> cst.Parameters:
    for group in ("posonly_params", "params", "kwonly_params"):
        items = list(getattr(params, group))
        for i, item in enumerate(items):
            if item is old:
                items[i] = new
                return params.with_changes(**{group: items})
    for single in ("posonly_ind", "star_arg"):
        if getattr(params, single) is old:
            return params.with_changes(**{single: new})
    raise CodemodError("signature element not found")  # pragma: no cover - _printed_params lists them all


def _with_argument(call: cst.Call, op: AddArgument) -> cst.Call:
    value = cst.parse_expression(op.value)
    if op.keyword is None:
        return call.with_changes(args=[cst.Arg(value=value), *call.args])
    if any(arg.keyword is not None and arg.keyword.value == op.keyword for arg in call.args):
        raise CodemodError(f"the call already passes `{op.keyword}`")
    new = cst.Arg(
        keyword=cst.Name(op.keyword),
        value=value,
        equal=cst.AssignEqual(whitespace_before=_NO_SPACE, whitespace_after=_NO_SPACE),
    )
    args, new = _appended(list(call.args), new, call.whitespace_before_args)
    return call.with_changes(args=[*args, new])


class _Apply(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, operations: list[Operation]):
        super().__init__()
        self.parameters = {_key(op.span.start): op for op in operations if isinstance(op, AddParameter)}
        self.arguments: dict = {}
        for op in operations:
            if isinstance(op, AddArgument):
                self.arguments.setdefault(_key(op.span.start, op.span.end), []).append(op)
        self.done: set[Operation] = set()

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        start = self.get_metadata(PositionProvider, original).start
        op = self.parameters.get((start.line, start.column))
        if op is None:
            return updated
        if original.name.value != op.function.rsplit(".", 1)[-1] and op.function.rsplit(".", 1)[-1] != "__init__":
            if original.name.value != "__init__":
                raise CodemodError(f"expected `{op.function}` at line {start.line}, found `{original.name.value}`")
        self.done.add(op)
        return _with_parameter(updated, op)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        where = self.get_metadata(PositionProvider, original.func)
        ops = self.arguments.get(((where.start.line, where.start.column), (where.end.line, where.end.column)))
        for op in ops or ():
            updated = _with_argument(updated, op)
            self.done.add(op)
        return updated


@functools.lru_cache(maxsize=2)  # a plan's own file and its callers' file, in turn
def _parsed(text: str) -> MetadataWrapper:
    """The libcst tree of `text`, with the positions resolved on first use, kept for the next
    rewrite of the same text: the JSON and SARIF output carry out each finding's plan on its
    file in turn (fix.materialize), and parsing the file and resolving its positions again
    for each was three fifths of that (cProfile, 96 threaded fixes in a 120-line module).
    libcst trees are immutable: a rewrite builds a new one and leaves this one as it was."""
    return MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)


def _wrapper(text: str, filename: str) -> MetadataWrapper:
    try:
        return _parsed(text)
    except cst.ParserSyntaxError as exc:
        raise CodemodError(f"{filename}: libcst cannot parse it: {str(exc).splitlines()[0]}") from exc


def _one_parameter_per_function(operations: list[Operation], filename: str) -> None:
    added: dict[Span, AddParameter] = {}
    for op in operations:
        if isinstance(op, AddParameter) and added.setdefault(op.span, op) != op:
            other = added[op.span]
            raise CodemodError(
                f"{filename}:{op.span.start[0]}: `{op.function}` would take both `{other.name}={other.default}` and `{op.name}={op.default}`"
            )


def _all_done(operations: list[Operation], transformer: _Apply, filename: str) -> None:
    missing = set(operations) - transformer.done
    if missing:
        first = min(missing, key=lambda op: op.span)
        raise CodemodError(f"{filename}:{first.span.start[0]}: the code there changed since it was checked")


def rewrite(text: str, operations: list[Operation], filename: str) -> str:
    """`text` with `operations` carried out. Raises CodemodError, never leaves half of them."""
    wrapper = _wrapper(text, filename)
    _one_parameter_per_function(operations, filename)
    transformer = _Apply(list(set(operations)))
    try:
        result = wrapper.visit(transformer)
    except CodemodError as exc:
        raise CodemodError(f"{filename}: {exc}") from exc
    _all_done(operations, transformer, filename)
    return result.code


@dataclass(frozen=True)
class _Layout:
    """Where each top-level statement of a module is written: its first row, and its code."""

    rows: list[int]
    codes: list[str]


@functools.lru_cache(maxsize=2)
def _layout(text: str) -> _Layout | None:
    """The module's top-level statements, each printed alone, when together with the header
    and footer they print `text` back exactly (None otherwise: the whole module is printed)."""
    module = _parsed(text).module
    if not module.has_trailing_newline or module.default_newline == "\r":
        return None
    header = "".join(module.code_for_node(line) for line in module.header)
    codes = [module.code_for_node(statement) for statement in module.body]
    footer = "".join(module.code_for_node(line) for line in module.footer)
    if header + "".join(codes) + footer != text:
        return None
    rows, row = [], 1 + header.count("\n")
    for code in codes:
        rows.append(row)
        row += code.count("\n")
    return _Layout(rows, codes)


def rewrite_statements(text: str, operations: list[Operation], filename: str) -> list[tuple[int, str, str]] | None:
    """`rewrite`, as the runs of consecutive top-level statements it changes: (first row, old
    code, new code) each, in order. Only the statements holding an operation are visited and
    printed, so a plan costs what its statements do, not what the module does (JSON and SARIF
    carry out each finding's plan on its own). None when the module cannot be printed
    statement by statement; the same CodemodError as `rewrite` otherwise."""
    wrapper = _wrapper(text, filename)
    layout = _layout(text)
    if layout is None:
        return None
    _one_parameter_per_function(operations, filename)
    transformer = _Apply(list(set(operations)))
    held = sorted({bisect.bisect_right(layout.rows, op.span.start[0]) - 1 for op in operations} - {-1})
    body = wrapper.module.body
    new: dict[int, str] = {}
    try:
        with transformer.resolve(wrapper):
            for i in held:
                new[i] = wrapper.module.code_for_node(body[i].visit(transformer))
    except CodemodError as exc:
        raise CodemodError(f"{filename}: {exc}") from exc
    _all_done(operations, transformer, filename)
    runs: list[tuple[int, str, str]] = []
    for i in held:
        if runs and i - 1 in new and runs[-1][0] + runs[-1][1].count("\n") == layout.rows[i]:
            first, old_code, new_code = runs[-1]
            runs[-1] = (first, old_code + layout.codes[i], new_code + new[i])
        else:
            runs.append((layout.rows[i], layout.codes[i], new[i]))
    return runs
