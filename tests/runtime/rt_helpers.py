"""Small helpers shared by the runtime tests."""

import sys


def next_line() -> int:
    """The line after the caller's: where the call under test is."""
    return sys._getframe(1).f_lineno + 1


def sites(leaks) -> list[tuple[str, int]]:
    return sorted((leak.code, leak.line) for leak in leaks)
