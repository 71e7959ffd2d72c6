"""The library names a project file uses, read from its text without parsing it.

`from facexlib.utils.face_restoration_helper import FaceRestoreHelper` wants
`facexlib.utils.face_restoration_helper.FaceRestoreHelper`; `import face_alignment`
followed by `face_alignment.FaceAlignment(...)` wants `face_alignment.FaceAlignment`.
A regular expression over the text is enough (an import in a string only costs a
look-up) and keeps this cheap for files the index stage never parses.
"""

from __future__ import annotations

import re
import sys

# Libraries devlint's rules model themselves (torch's `device=None` is the current device
# by design, and DL011 judges its factories where they are called), or that hold no device.
_NOT_SUMMARISED = frozenset({"torch", "numpy", "scipy", "pandas", "PIL", "cv2", "matplotlib", "tqdm", "yaml"})


def skipped(top: str) -> bool:
    """Is the top-level package `top` one whose source is never read (the standard library,
    torch and the like)?"""
    return top in _NOT_SUMMARISED or top in sys.stdlib_module_names

# Each pattern starts with a literal, which the regex engine finds fast; that the match
# starts a line is checked after (`_starts_line`).
_FROM = re.compile(r"from[ \t]+([A-Za-z_][\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)")
_IMPORT = re.compile(r"import[ \t]+([^\n#;]+)")
_ALIAS = re.compile(r"([A-Za-z_][\w.]*)(?:\s+as\s+(\w+))?")


def used_names(text: str) -> set[str]:
    """Qualified names of what the file imports from absolute modules, and calls through
    a module it imports whole."""
    if "import" not in text:
        return set()
    wanted: set[str] = set()
    for found in _FROM.finditer(text):
        if not _starts_line(text, found.start()):
            continue
        module, names = found.groups()
        for part in names.strip("()").replace("\\", " ").split(","):
            match = _ALIAS.fullmatch(part.strip())
            if match is not None and not skipped(module.split(".")[0]):
                wanted.add(f"{module}.{match.group(1)}")
                wanted |= _called_through(text, f"{module}.{match.group(1)}", match.group(2) or match.group(1))
    for found in _IMPORT.finditer(text):
        if not _starts_line(text, found.start()):
            continue
        clause = found.group(1)
        for part in clause.split(","):
            match = _ALIAS.fullmatch(part.strip())
            if match is not None and not skipped(match.group(1).split(".")[0]):
                wanted |= _called_through(text, match.group(1), match.group(2) or match.group(1))
    return wanted


_RELATIVE_FROM = re.compile(r"from[ \t]+\.*[\w.]*[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)")
_WORD = re.compile(r"[A-Za-z_]\w*")
_BOUND_AT_LINE_START = re.compile(r"^[ \t]*((?:def|class)[ \t]+)?([A-Za-z_]\w*)([^\n]*)", re.MULTILINE)


def taken_names(text: str) -> set[str]:
    """The names a file takes from other modules (the project's too, relative imports
    included): each `from m import NAME`; after `from m import *`, every word of the file
    that no line of it starts by binding (an assignment, def or class). What a module-level
    device nobody reads in its own module may still be used for."""
    if "import" not in text:
        return set()
    taken: set[str] = set()
    starred = False
    for found in _RELATIVE_FROM.finditer(text):
        if not _starts_line(text, found.start()):
            continue
        for part in found.group(1).strip("()").replace("\\", " ").split(","):
            match = _ALIAS.fullmatch(part.strip())
            if match is not None:
                taken.add(match.group(1))
            starred = starred or part.strip() == "*"
    if starred:
        bound = {name for keyword, name, rest in _BOUND_AT_LINE_START.findall(text) if _binds(keyword, rest)}
        taken |= set(_WORD.findall(text)) - bound
    return taken


_MODULE_FROM = re.compile(r"^from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.MULTILINE)


def reexports(text: str) -> list[tuple[int, str, str, str]]:
    """(dots, module, name, alias) of each module-level `from .mod import Name as alias`
    (relative or absolute): a package's `__init__` re-exporting `Name` lets callers write
    `pkg.Name` for `pkg.mod.Name`, which the index must see as the same definition."""
    if "import" not in text:
        return []
    found = []
    for match in _MODULE_FROM.finditer(text):
        dots, module, names = match.groups()
        for part in names.strip("()").replace("\\", " ").split(","):
            alias = _ALIAS.fullmatch(part.strip())
            if alias is not None and "." not in alias.group(1):
                found.append((len(dots), module, alias.group(1), alias.group(2) or alias.group(1)))
    return found


def aliases(module: str, is_package: bool, exported: list[tuple[int, str, str, str]]) -> dict[str, str]:
    """`module.alias` -> the qualified name it re-exports, for the `reexports` of a module."""
    table = {}
    parts = module.split(".") if module else []
    for dots, source, name, alias in exported:
        if dots:
            base = parts[: len(parts) - dots + (1 if is_package else 0)] if dots <= len(parts) + is_package else None
            if base is None:
                continue
            source = ".".join(base + ([source] if source else []))
        if source and module:
            table[f"{module}.{alias}"] = f"{source}.{name}"
    return table


def _binds(keyword: str, rest: str) -> bool:
    """Does a line that starts with `keyword` (`def `, `class ` or nothing) and a name go on,
    after the name, as a binding: a def/class signature, `= ...` (not `==`), or `: T = ...`?"""
    if keyword.startswith(("def ", "class ")):
        return True
    rest = rest.lstrip()
    return (rest.startswith("=") and not rest.startswith("==")) or (rest.startswith(":") and "=" in rest)


def _called_through(text: str, module: str, local: str) -> set[str]:
    """`local.attr(...)` calls, where `local` names `module` (or anything imported whole)."""
    if f"{local}." not in text:
        return set()
    pattern = re.compile(rf"{re.escape(local)}((?:\.\w+)+)\s*\(")
    return {
        module + found.group(1)
        for found in pattern.finditer(text)
        if found.start() == 0 or not (text[found.start() - 1].isalnum() or text[found.start() - 1] in "_.")
    }


def _starts_line(text: str, position: int) -> bool:
    start = text.rfind("\n", 0, position) + 1
    return start == position or text[start:position].isspace()
