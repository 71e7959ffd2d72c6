"""Launchers that bind the device per process: after them, "the current device" is the
process's own GPU, so `.cuda()` and `"cuda"` are right (issue 22, class 11).

The names come from the catalog (DL001's `launchers` and `launched_bases`), each with the
library source it was read from. A launcher counts when the scope's own code (or module
code, which runs first) called it on an earlier line; a method of a class that inherits a
launched base (a LightningModule's hooks, not its `__init__`) runs after its trainer chose
the device.
"""

from __future__ import annotations

import ast
import functools

from devlint import catalog
from devlint.static.names import qualname
from devlint.static.scope import Scope, _shallow


@functools.cache
def _launchers() -> frozenset[str]:
    return frozenset(catalog.api("DL001", "launchers", []))


@functools.cache
def _bases() -> frozenset[str]:
    return frozenset(catalog.api("DL001", "launched_bases", []))


@functools.cache
def libraries() -> tuple[str, ...]:
    """Top-level packages of the launchers: a file that names none of them has none."""
    return tuple(sorted({name.split(".")[0] for name in _launchers() | _bases()}))


def binds_device_before(scope: Scope, module: Scope, line: int) -> bool:
    """Is the code at `line` of `scope` run after a launcher bound the device?"""
    if any(at < line for at in _launcher_lines(scope)):
        return True
    if scope is not module and _launcher_lines(module):
        return True  # module code runs before any of its functions
    function = scope.function
    cls = function.enclosing_class if function is not None else None
    if cls is None or function.node.name == "__init__":
        return False
    return any(qualname(base, cls.parent) in _bases() for base in cls.node.bases)


def _launcher_lines(scope: Scope) -> list[int]:
    lines = scope.__dict__.get("_launcher_lines")
    if lines is None:
        lines = scope.__dict__["_launcher_lines"] = [
            node.lineno for node in _shallow(scope.body)
            if isinstance(node, ast.Call) and qualname(node.func, scope) in _launchers()
        ]
    return lines
