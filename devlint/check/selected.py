"""The selected stage: a finding inside a function that only runs after its callers chose the GPU.

A file alone cannot tell that `train()` is only ever called by `main()` after
`select_device(opt.device)` set CUDA_VISIBLE_DEVICES (yolov5), or after
`torch.cuda.set_device(local_rank)`: there the current device, and for
CUDA_VISIBLE_DEVICES the GPUs counted from 0, are the ones the user chose. This stage asks
the project: a finding of a current-device rule is dropped when every call of its function
in the checked files comes after its caller selected the device; for rules about GPU0 and
every visible GPU (and DL012, whose defaults may be GPU0), only a CUDA_VISIBLE_DEVICES
selection counts (set_device does not hide GPU0). A function with no call in the checked
files keeps its findings. The same question settles a DL005 whose `map_location` is a
parameter defaulting to None: dropped when every call in the checked files passes it.
"""

from __future__ import annotations

import ast
import bisect
import re
from dataclasses import replace

from devlint.checks.device_value import DEFAULT_ADVICE
from devlint.checks.dl005_load_without_map_location import unpassed_parameter
from devlint.findings import Finding
from devlint.static import analyze, launchers
from devlint.static.callers import ProjectCalls, Target, _target, call_starts

# Rules whose finding is the current device: any selection before the call makes it the chosen one.
CURRENT_DEVICE = frozenset({"DL001", "DL002", "DL003", "DL004", "DL006", "DL010", "DL011", "DL020"})
# Rules about GPU0 or every visible GPU: only CUDA_VISIBLE_DEVICES set before the call helps.
VISIBLE_DEVICES = frozenset({"DL007", "DL008", "DL012", "DL014", "DL021", "DL022", "DL025"})
# Rules whose finding is that the code never selects the device: a caller that selects it
# after the call (init_process_group in a helper, set_device right after it) counts too.
SELECTED_ANYWHERE = frozenset({"DL020"})
BOUND = 6  # callers up the chain a selection is looked for
_NAMES_READ = 64  # callers' names the text-only test follows up the chain, per run
# Rules that report a parameter's default where it is written (DL008's `device="cuda:0"`), known
# by their fix's advice.
DEFAULTS_JUDGED = frozenset({"DL008"})

# What a call must have done for a finding's rule: set CUDA_VISIBLE_DEVICES before it,
# selected the device (any way) before it, or select it anywhere in the calling function.
VISIBLE, BEFORE, ANYWHERE = "visible", "before", "anywhere"


def _need(code: str) -> str:
    if code in VISIBLE_DEVICES:
        return VISIBLE
    return ANYWHERE if code in SELECTED_ANYWHERE else BEFORE


def _selects(call, need: str) -> bool:
    if need == VISIBLE:
        return call.visible
    return call.selected or (need == ANYWHERE and call.caller_selects)


class CallerSelections:
    def __init__(self, works: list, index, calls: ProjectCalls | None = None, omissions_reported: bool = False):
        self.calls = calls or ProjectCalls(works, index)
        self._omissions_reported = omissions_reported  # DL012 judges each call that omits a default
        self._index = index
        self._decided: dict[tuple[str, bool], bool] = {}
        self._may: dict[tuple[str, str], bool] = {}  # _may_be_selected's answers
        self._names_in: dict[int, tuple] = {}  # a caller file's text -> (lines, line starts, string rows)
        self._imports: dict[int, dict[str, str]] = {}  # a caller file's text -> imported_from(text)
        # The file of the findings being read (they come sorted by file): the function name
        # guessed for each of its lines, and its functions by line once parsed.
        self._file: str | None = None
        self._names: list[str | None] = []
        self._functions: _Functions | None = None

    def drop(self, findings: list[Finding]) -> list[Finding]:
        """`findings` without those whose function only runs after its callers selected the GPU.
        A bug met while judging one keeps that finding and says so beside it (DL901): the
        rest of the project's findings still come out."""
        kept = []
        for finding in findings:
            try:
                if self._excused_in_file(finding):
                    continue
            except Exception as exc:
                kept.append(analyze.internal_error(finding.filename, exc, finding.location.row))
            kept.append(finding)
        return kept

    def _excused_in_file(self, finding: Finding) -> bool:
        """The text says first whether it can be (most findings stop there, nothing parsed)."""
        if finding.cell is not None:
            return False
        if finding.code == "DL005":
            return self._excused(finding, self._context_of(finding), self._functions)
        if finding.code not in CURRENT_DEVICE | VISIBLE_DEVICES:
            return False
        if finding.filename != self._file:
            self._file, self._functions = finding.filename, None
            self._names = function_names(self.calls.text(finding.filename) or "")
        if finding.code in DEFAULTS_JUDGED and _at_a_default(finding) and self._default_judged_at_calls(finding):
            return True
        row = finding.location.row
        names = self._names[row] if 0 < row < len(self._names) else ()
        stem = self.calls.home(finding.filename)
        if not any(self._may_be_selected(name, _need(finding.code), home) for name, home in _homes(names, stem)):
            return False
        return self._excused(finding, self._context_of(finding), self._functions)

    def drop_in_text(self, findings: list[Finding], display: str, module: str, data: bytes) -> list[Finding]:
        """The same, for findings of new text of a file (the fix stage's rechecks)."""
        if not any(f.code in CURRENT_DEVICE | VISIBLE_DEVICES or f.code == "DL005" for f in findings):
            return findings
        parsed = analyze.parse(data, display)
        if parsed.tree is None:
            return findings
        ctx = analyze.make_context(parsed, display, module, frozenset({"callers"}), self._index)
        functions = _Functions(ctx)
        return [f for f in findings if not self._excused(f, ctx, functions)]

    def _excused(self, finding: Finding, ctx, functions: _Functions | None) -> bool:
        if finding.cell is not None or ctx is None:
            return False
        if finding.code == "DL005":
            param = unpassed_parameter(finding)
            return param is not None and self._passed_at_every_call(finding, param, ctx, functions)
        if finding.code not in CURRENT_DEVICE | VISIBLE_DEVICES:
            return False
        found = functions.innermost(finding.location.row)
        if found is None:
            return False
        qualname = self._index.qualname_of(found)
        if qualname is None:
            return False
        return self._selected_by_callers(_target(ctx, found, qualname), _need(finding.code))

    def _selected_by_callers(self, target: Target, need: str, depth: int = 0) -> bool:
        key = (target.qualname, need)
        if key not in self._decided:
            self._decided[key] = False  # a call cycle selects nothing
            self._decided[key] = self._every_call_selected(target, need, depth)
        return self._decided[key]

    def _every_call_selected(self, target: Target, need: str, depth: int) -> bool:
        """Every call comes after its caller selected the device, or sits in a function whose
        own callers all did (a helper of a helper of the training loop), up to BOUND deep.
        A method that runs on an instance also runs only after every construction of its
        class (`forward`, called as `model(x)`, is never called by name): when each of those
        comes after a selection, so does every call of the method. Read cheaply first: a file
        that calls the function but has nothing that could select a device (no set_device,
        CUDA_VISIBLE_DEVICES, selecting helper, launcher, process-group or GPU-count test)
        settles it without parsing anything."""
        if self._calls_selected(target, need, depth):
            return True
        built = target.constructor
        return (
            built is not None
            and depth < BOUND
            and not self.calls.subclassed(built.called_as)  # a subclass's instances run it too
            and self._selected_by_callers(built, need, depth + 1)
        )

    def _calls_selected(self, target: Target, need: str, depth: int) -> bool:
        if not self._may_be_selected(target.called_as, need, _home(target)):
            return False
        calls = self.calls.calls_to(target)
        return bool(calls) and all(
            _selects(call, need)
            or (call.enclosing is not None and depth < BOUND and self._selected_by_callers(call.enclosing, need, depth + 1))
            for call in calls
        )


    def _default_judged_at_calls(self, finding: Finding) -> bool:
        """Is the finding a parameter's default that every call of its function in the checked
        files (a subclass's construction included) passes (Render(device=torch.device('cuda:0'))
        built only as Render(..., dev)), or has calls and DL012 is on to judge those that omit
        it? Then the calls that run with it are what is reported, not the default. A function
        nobody calls keeps it: its users may omit it."""
        ctx = self._context_of(finding)
        function = self._functions.defined_at(finding.location.row) if ctx is not None else None
        if function is None:
            return False
        param = _defaulted_param(function.node, (finding.location.row, finding.location.column - 1))
        qualname = self._index.qualname_of(function) if param is not None else None
        if qualname is None:
            return False
        judged = self._omissions_reported and any(d.param == param for d in self._index.cuda_defaults(qualname))
        calls, position = self._calls_of(ctx, function, qualname, param)
        return bool(calls) and (judged or all(
            param in call.passes or (position is not None and call.args > position) for call in calls
        ))

    def _passed_at_every_call(self, finding: Finding, param: str, ctx, functions: _Functions | None) -> bool:
        """Does every call in the checked files of the function around a DL005 finding pass
        the parameter its `map_location` is (mmcv's `load_checkpoint(..., map_location=None)`
        called with `map_location="cpu"`)? A function nobody calls keeps it."""
        function = functions.innermost(finding.location.row) if ctx is not None else None
        qualname = self._index.qualname_of(function) if function is not None else None
        if qualname is None or param not in function.params:
            return False
        calls, position = self._calls_of(ctx, function, qualname, param)
        return bool(calls) and all(param in call.passes or (position is not None and call.args > position) for call in calls)

    def _context_of(self, finding: Finding):
        """The finding's file parsed, with its functions by line (kept while its findings come)."""
        ctx = self.calls.context(finding.filename)
        if ctx is not None and (self._functions is None or self._functions.ctx is not ctx):
            self._functions = _Functions(ctx)
        return ctx

    def _calls_of(self, ctx, function, qualname: str, param: str) -> tuple[list, int | None]:
        """The function's calls in the checked files (a subclass's construction included), and
        the position a call passes `param` at."""
        target = _target(ctx, function, qualname)
        calls = self.calls.calls_to(target)
        for inheritor in self._index.inheritors(qualname):
            calls += self.calls.calls_to(replace(target, qualname=inheritor))
        return calls, target.positional.index(param) if param in target.positional else None

    def _may_be_selected(self, name: str, need: str, home: str | None, depth: int = 0) -> bool:
        """Could every call of `name` (defined in module `home`) come after a selection, read
        from the text alone? A calling file whose text could select a device (set_device,
        CUDA_VISIBLE_DEVICES, a selecting helper, a launcher...) may; one without may still
        call it from functions whose own calls may, up the chain (their names guessed by
        function_names); a call from module-level code there may not. For a function or class
        (`home` given), a file that imports `name` from another module calls that one (DaGAN's
        run_dataparallel.py runs train_dataparallel's `train`, not train.py's), and a method
        call on another object (`model.train()`) is no call of it. Only what passes is parsed."""
        key = (name, need, home)
        if key in self._may:
            return self._may[key]
        if depth and len(self._may) >= _NAMES_READ:
            return False  # a project whose calls fan out this far keeps the finding, cheaply
        self._may[key] = True  # in a call cycle, leave it to the parsed check (a cycle selects nothing there)
        markers = _SELECTING + tuple(self._index.selector_names())
        if need != VISIBLE:
            markers += _SELECTING_CURRENT + launchers.WORDS + tuple(f"{name}(" for name in sorted(self._index.setter_names()))
            if self._index.process_group_selects_device():
                markers += _UNDER_PROCESS_GROUP
        called = [
            (path, text)
            for path, text in self.calls.files_calling(name)
            if home is None or (not self._imported_elsewhere(text, name, home) and _call_offsets(text, name, home))
        ]
        verdict = bool(called) and all(
            any(m in text for m in markers)
            or (depth < BOUND and self._callers_may_be_selected(path, text, name, home, need, depth))
            for path, text in called
        )
        self._may[key] = verdict
        return verdict

    def _imported_elsewhere(self, text: str, name: str, home: str) -> bool:
        """Does the file's text import `name` from another checked module that defines its own
        `name` at its top level? (Not a package that may re-export `home`'s.)"""
        imported = self._imports.get(id(text))
        if imported is None:
            imported = self._imports[id(text)] = imported_from(text)
        module = imported.get(name)
        return module not in (None, "", home) and self.calls.defines(module, name)

    def _callers_may_be_selected(self, path: str, text: str, name: str, home: str | None, need: str, depth: int) -> bool:
        """Is each call of `name` in `text` inside a function some name of which may be selected?"""
        names = self._names_in.get(id(text))
        if names is None:
            names = self._names_in[id(text)] = (text.splitlines(), _line_starts(text), _in_strings(text))
        lines, starts, in_strings = names
        rows = [bisect.bisect_right(starts, offset) + 1 for offset in _call_offsets(text, name, home)]
        enclosing = [names_at(lines, row) for row in rows if row not in in_strings]
        stem = self.calls.home(path)
        return all(  # mentions only in strings: no call from this file
            any(n != name and self._may_be_selected(n, need, at, depth + 1) for n, at in _homes(names, stem)) for names in enclosing
        )


_DEF = re.compile(r"[ \t]*(?:async\s+)?(def|class)\s+(\w+)")
# `from a.b import c, d as e` / `from a.b import (\n c,\n d,\n)`: the module and what it imports
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
_IMPORTED = re.compile(r"(\w+)(?:\s+as\s+(\w+))?")


def _call_offsets(text: str, name: str, home: str | None) -> list[int]:
    """Where `text` has a call-shaped mention of `name`: not its `def` or `class` line, not the
    end of a longer name, and, for a function or class of module `home`, not a method call
    on another object (only `home.name(...)`)."""
    called = re.compile(rf"{re.escape(name)}\s*\(")  # a literal first: the regex engine's fast search
    return [
        start for start in call_starts(text, called)
        if home is None or text[start - 1 : start] != "." or text.endswith(home, 0, start - 1)
    ]


def _homes(names: tuple[str, ...], stem: str | None) -> list[tuple[str, str | None]]:
    """function_names' names of a line with the module each is imported from: a method's (the
    first of two) is called on an instance, never imported (None); a function's or class's is
    the file's."""
    return [(name, stem if i == len(names) - 1 else None) for i, name in enumerate(names)]


def imported_from(text: str) -> dict[str, str]:
    """Each name a file binds by a `from` import, to the last component of its module (""
    for `from . import x`, which binds a module), read from the text."""
    found: dict[str, str] = {}
    for module, names in _FROM_IMPORT.findall(text):
        for original, alias in _IMPORTED.findall(names.split("#", 1)[0].strip("()")):
            found[alias or original] = module.rsplit(".", 1)[-1]
    return found


def _home(target: Target) -> str | None:
    """The module a plain function or a class is defined in, by its last component; None for
    a method (called on an instance, never imported by name)."""
    if target.method_of is not None or "." not in target.qualname:
        return None
    return target.qualname.rsplit(".", 2)[-2]


def _in_strings(text: str) -> set[int]:
    """Rows inside a triple-quoted string (a docstring's `>>> PartialFC(...)` is no call),
    guessed from the count of triple quotes on each line."""
    rows, inside = set(), False
    for row, line in enumerate(text.splitlines(), 1):
        quotes = line.count('"""') + line.count("'''")
        if inside or quotes:
            rows.add(row)
        if quotes % 2:
            inside = not inside
    return rows


def _line_starts(text: str) -> list[int]:
    """The offset each line after the first starts at: bisect_right + 1 gives an offset's row."""
    return [m.end() for m in re.finditer("\n", text)]


def function_names(text: str) -> list[tuple[str, ...]]:
    """For each line (1-based; index 0 unused), the names a call that runs the function
    around it is written with, read from the text: the nearest less indented `def` above it
    (the class's name for `__init__`), then, for a method, its class (built before any method
    runs); () for module or class-level code. Only a first guess: the tree decides. One pass:
    a stack holds the chain of less indented lines above the current one (blank and comment
    lines left out), so each line's answer walks its nesting, not the file."""
    lines = text.splitlines()
    names: list[tuple[str, ...]] = [()] * (len(lines) + 1)
    stack: list[tuple[int, str | None, str | None]] = []  # (indent, "def"/"class"/None, name)
    for row, line in enumerate(lines, 1):
        current = _indent(line)
        depth = len(stack)
        while depth and stack[depth - 1][0] >= current:
            depth -= 1
        names[row] = _enclosing_name(stack, depth) if depth else ()  # module level: no function
        if line.strip() and not line.lstrip().startswith(("#", ")", "]", "}")):  # `):` closes a signature, not the def
            del stack[depth:]
            match = _DEF.match(line)
            stack.append((current, *match.groups()) if match else (current, None, None))
    return names


def names_at(lines: list[str], row: int) -> tuple[str, ...]:
    """function_names for one row, read upward from it: the less indented lines above it up to
    the module level (for a few calls in a long file, instead of the whole file)."""
    if not 0 < row <= len(lines):
        return ()
    current = _indent(lines[row - 1]) if lines[row - 1].strip() else 1 << 30
    chain: list[tuple[int, str | None, str | None]] = []
    for above in range(row - 2, -1, -1):
        line = lines[above]
        stripped = line.lstrip()
        if not stripped or stripped.startswith(("#", ")", "]", "}")):
            continue
        indent = len(line) - len(stripped)
        if indent < current:
            match = _DEF.match(line)
            chain.append((indent, *match.groups()) if match else (indent, None, None))
            current = indent
            if indent == 0:
                break
    chain.reverse()
    return _enclosing_name(chain, len(chain))


def _enclosing_name(stack: list, depth: int) -> tuple[str, ...]:
    """The answer for a line whose less indented lines above are `stack[:depth]`, innermost last."""
    frames = [(kind, name) for _, kind, name in reversed(stack[:depth]) if kind]
    if not frames or frames[0][0] != "def":
        return ()
    name = frames[0][1]
    owner = frames[1][1] if len(frames) > 1 and frames[1][0] == "class" else None
    if name == "__init__":
        return (owner,) if owner else ()
    return (name, owner) if owner else (name,)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# Text that code selecting the device before a call must contain: CUDA_VISIBLE_DEVICES (also
# through a selecting helper, whose names the index adds) for every rule; set_device, a device
# context, a one-GPU test or a launcher (static/launchers.py) for current-device rules; a process-group test where the project's
# set-up selects the device.
_SELECTING = ("CUDA_VISIBLE_DEVICES",)
_SELECTING_CURRENT = ("set_device(", "cuda.device(", "device_count(")
_UNDER_PROCESS_GROUP = ("initialized(", "world_size")


def _at_a_default(finding: Finding) -> bool:
    """Is the finding one at a parameter's default (its fix gives device_value's advice)?"""
    return finding.fix is not None and finding.fix.message.startswith(DEFAULT_ADVICE)


def _defaulted_param(node, at: tuple[int, int]) -> str | None:
    """The parameter of `node` whose default holds the position `at` (row, 0-based column)."""
    args = node.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    for arg, default in pairs:
        if (default.lineno, default.col_offset) <= at <= (default.end_lineno, default.end_col_offset):
            return arg.arg
    return None


class _Functions:
    """A file's functions and classes by the lines they span, level by level, so that the
    innermost function around a line is found by bisection, not by walking the file."""

    def __init__(self, ctx):
        self.ctx = ctx
        self._levels: dict[int, tuple[list[int], list]] = {}  # id(body) -> (first lines, defs)

    def innermost(self, row: int):
        """The scope of the innermost function whose lines hold `row`, or None."""
        scope, body = self.ctx.module_scope, self.ctx.tree.body
        found = None
        while True:
            starts, defs = self._level(body)
            i = bisect.bisect_right(starts, row) - 1
            inner = defs[i] if i >= 0 and row <= defs[i].end_lineno else None
            if inner is None:
                return found
            scope = scope.child(inner)
            if not isinstance(inner, ast.ClassDef):
                found = scope
            body = inner.body

    def defined_at(self, row: int):
        """The scope of the innermost function whose signature spans `row`, or None."""
        found = self.innermost(row)
        while found is not None and not (found.node.lineno <= row <= found.node.body[0].lineno):
            found = found.parent.function if found.parent is not None else None
        return found

    def _level(self, body: list) -> tuple[list[int], list]:
        if id(body) not in self._levels:
            defs = sorted(_defs(body), key=lambda n: n.lineno)
            self._levels[id(body)] = ([n.lineno for n in defs], defs)
        return self._levels[id(body)]


def _defs(body: list) -> list:
    """Functions and classes defined in a block, also inside its if/try/with/for blocks."""
    out, stack = [], list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(node)
        elif isinstance(node, ast.stmt):
            for name in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(node, name, []) or [])
        elif isinstance(node, ast.ExceptHandler):
            stack.extend(node.body)
    return out
