"""The libcst codemods keep what a text edit could not: layout, comments, markers."""

import ast
import textwrap

import pytest

from devlint.codemod import CodemodError, rewrite, text_edits
from devlint.findings import AddArgument, AddParameter, Location, Span
from devlint.static.source import Source


def _def(source: str, name: str) -> Span:
    """The span an `ast` analysis gives the function `name`: its `def` to the end of its name."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            line = source.splitlines()[node.lineno - 1]
            start = line.index("def ", node.col_offset)
            end = line.index(name, start) + len(name)
            return Span("m.py", (node.lineno, node.col_offset + 1), (node.lineno, end + 1))
    raise AssertionError(name)


def _call(source: str, callee: str, nth: int = 0) -> Span:
    """The span of the nth call whose callee is written `callee`."""
    src = Source(source)
    calls = [
        n for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and src.segment(src.location(n.func.lineno, n.func.col_offset), src.location(n.func.end_lineno, n.func.end_col_offset)) == callee
    ]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    func = calls[nth].func
    start, end = src.location(func.lineno, func.col_offset), src.location(func.end_lineno, func.end_col_offset)
    return Span("m.py", (start.row, start.column), (end.row, end.column))


def _param(source, name):
    return AddParameter(_def(source, name), f"m.{name}", "device", "None")


CASES = {
    "multi-line signature with a trailing comma and a comment": (
        '''
        def grid(
            size,
            type,  # a tensor type string
        ):
            return size
        ''',
        '''
        def grid(
            size,
            type,  # a tensor type string
            device=None,
        ):
            return size
        ''',
    ),
    "decorators stay": (
        '''
        @torch.no_grad()
        @staticmethod
        def grid(size):
            return size
        ''',
        '''
        @torch.no_grad()
        @staticmethod
        def grid(size, device=None):
            return size
        ''',
    ),
    "after *args the parameter is keyword-only": (
        '''
        def grid(size, *args, scale=1):
            return size
        ''',
        '''
        def grid(size, *args, scale=1, device=None):
            return size
        ''',
    ),
    "after a bare * marker": (
        '''
        def grid(size, *, scale=1):
            return size
        ''',
        '''
        def grid(size, *, scale=1, device=None):
            return size
        ''',
    ),
    "after a positional-only marker": (
        '''
        def grid(size, /):
            return size
        ''',
        '''
        def grid(size, /, device=None):
            return size
        ''',
    ),
    "a method keeps self and its annotations": (
        '''
        class R:
            async def grid(self, size: int = 3) -> int:
                return size
        ''',
        '''
        class R:
            async def grid(self, size: int = 3, device=None) -> int:
                return size
        ''',
    ),
    "no parameters at all": (
        '''
        def grid():
            return 1
        ''',
        '''
        def grid(device=None):
            return 1
        ''',
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_add_parameter_keeps_the_signature_layout(name):
    before, after = (textwrap.dedent(t).lstrip() for t in CASES[name])
    assert rewrite(before, [_param(before, "grid")], "m.py") == after


def test_arguments_keep_one_per_line_calls_and_their_comments():
    before = textwrap.dedent('''
        up = RealESRGANer(
            scale=2,  # two
            half=True)  # need False on the CPU
        enh = GFPGANer(
            model_path=path,
            upscale=2,
        )
        x = f(a, b)
        y = t.cuda()
        z = t.cuda(non_blocking=True)
        ''').lstrip()
    ops = [
        AddArgument(_call(before, "RealESRGANer"), "device", "device"),
        AddArgument(_call(before, "GFPGANer"), "device", "self.device"),
        AddArgument(_call(before, "f"), "device", "x.device"),
        AddArgument(_call(before, "t.cuda", 0), None, "device"),
        AddArgument(_call(before, "t.cuda", 1), None, "device"),
    ]
    assert rewrite(before, ops, "m.py") == textwrap.dedent('''
        up = RealESRGANer(
            scale=2,  # two
            half=True,
            device=device)  # need False on the CPU
        enh = GFPGANer(
            model_path=path,
            upscale=2,
            device=self.device,
        )
        x = f(a, b, device=x.device)
        y = t.cuda(device)
        z = t.cuda(device, non_blocking=True)
        ''').lstrip()


def test_nested_calls_that_start_at_the_same_place_are_told_apart():
    before = "x = torch.arange(w).type(type)\n"
    op = AddArgument(_call(before, "torch.arange"), "device", "device")
    assert rewrite(before, [op], "m.py") == "x = torch.arange(w, device=device).type(type)\n"


def test_kwargs_refused_and_moved_code_fails_the_whole_file():
    before = "def grid(size, **kwargs):\n    return size\n"
    with pytest.raises(CodemodError, match="kwargs"):
        rewrite(before, [_param(before, "grid")], "m.py")
    stale = AddArgument(Span("m.py", (1, 5), (1, 9)), "device", "device")
    with pytest.raises(CodemodError, match="changed since it was checked"):
        rewrite("x = 1\n", [stale], "m.py")
    with pytest.raises(CodemodError, match="already passes"):
        src = "f(device=d)\n"
        rewrite(src, [AddArgument(_call(src, "f"), "device", "device")], "m.py")


def test_crlf_and_unicode_survive_and_edits_reproduce_the_rewrite():
    before = "# é\r\ndef grid(size):\r\n    return size\r\n"
    after = rewrite(before, [_param(before, "grid")], "m.py")
    assert after == "# é\r\ndef grid(size, device=None):\r\n    return size\r\n"
    edits = text_edits(before, after, "other.py")
    assert [(e.location, e.end_location, e.filename) for e in edits] == [(Location(2, 1), Location(3, 1), "other.py")]
    src = Source(before)
    rebuilt = before
    for e in sorted(edits, key=lambda e: e.location, reverse=True):
        rebuilt = rebuilt[: src.offset(e.location)] + e.content + rebuilt[src.offset(e.end_location):]
    assert rebuilt == after
