"""What one library source file tells about devices: its summary, kept in the cache.

A summary is computed from the file's text alone (parsed, never imported) and holds
only what the file says by itself, so that it can be cached by the distribution's
name and version and combined with other files' summaries later (`knowledge`):

- the same facts the project index collects from a project file (static/index.py,
  static/defaults.py): callables whose device parameter defaults to the current device
  or GPU0, the parameters they pass their default on to, and those they never read;
- for each module-level function and class (its `__init__`): the calls it makes to
  other named callables, with the arguments it passes (so that a caller that drops
  the device it was given can be found once every callee is known), and the places
  where it puts something on a device fixed in the library, whatever device it was
  given (`self.to(device)` with a module-level `device = torch.device('cuda' ...)`);
- its imports, which lead to the definitions of the names it re-exports or calls.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict

from devlint.static import analyze, collect, names, values
from devlint.static import index as project_index
from devlint.static.scope import Scope, _shallow

_TEXT = 80  # characters of a call quoted in a message
_DEPTH = 4  # assignments followed to tell whether a device comes from a parameter


def summarise(data: bytes, display: str, module: str) -> dict:
    """The summary of the file `display` (its path below site-packages) holding `module`
    (a package's when `display` is its `__init__.py`). A file that does not decode or parse
    summarises to nothing: a library's broken file is not the user's problem."""
    parsed = analyze.parse(data, display)
    if parsed.tree is None:
        return empty()
    ctx = analyze.make_context(parsed, display, module, frozenset({"index"}), project_index.ProjectIndex(library=()))
    try:
        facts = collect.collect(ctx)
        definitions = _definitions(ctx.module_scope, ctx.text, display)
    except RecursionError:
        return empty()
    scope = ctx.module_scope
    summary = {
        "facts": {
            "defaults": [asdict(d) for d in facts.defaults],
            "forwards": [asdict(f) for f in facts.forwards],
            "unused": [list(u) for u in facts.unused],
        },
        "names": sorted(scope.defs),
        "definitions": definitions,
        "imports": dict(sorted(scope.imports.items())),
        "stars": _star_imports(scope),
    }
    return summary


def empty() -> dict:
    return {"facts": {"defaults": [], "forwards": [], "unused": []}, "names": [], "definitions": {}, "imports": {}, "stars": []}


def _star_imports(scope: Scope) -> list[str]:
    from devlint.static.scope import _absolute

    found = []
    for node in scope.body:
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            found.append(_absolute(scope.module_name, node.level, node.module, scope.package))
    return found


def _definitions(module: Scope, text, display: str) -> dict:
    """Calls and fixed placements of each module-level function and class constructor."""
    found = {}
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scope = module.child(node)
        elif isinstance(node, ast.ClassDef):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if init is None:
                continue
            scope = module.child(node).child(init)
        else:
            continue
        record = _record(scope, text, display)
        if record["calls"] or record["fixed"]:
            found[f"{module.module_name}.{node.name}"] = record
    return found


def _record(scope: Scope, text, display: str) -> dict:
    """The function's calls and fixed placements that run whenever it runs: one in a branch
    (accelerate's `load_checkpoint_in_model` offloads 8-bit weights through a helper that
    writes `.to(0)` only for a disk map) says nothing about what every call does."""
    params = [p for p in scope.params if p not in ("self", "cls")]
    calls, fixed = [], []
    branched = _in_branches(scope.body)
    for node in _shallow(scope.body):
        if not isinstance(node, ast.Call) or id(node) in branched:
            continue
        placed = _fixed_placement(node, scope)
        if placed is not None:
            fixed.append([node.lineno, _quote(text, node)])
            continue
        callee = names.qualname(node.func, scope)
        if callee is None or callee.split(".")[0] in ("torch", "builtins"):
            continue
        keywords = [k.arg for k in node.keywords if k.arg]
        star = names.passes_unknown_args(node)
        calls.append([callee, node.lineno, len(node.args), keywords, star, _quote(text, node)])
    return {"params": params, "calls": calls, "fixed": fixed, "where": f"{display}:{scope.node.lineno}"}


def _in_branches(body: list[ast.stmt]) -> set[int]:
    """Ids of the nodes of `body` that run only on some paths: in an if's branches, a
    conditional expression's, an except handler or a while loop."""
    found: set[int] = set()
    for node in _shallow(body):
        if isinstance(node, ast.If):
            branches = [*node.body, *node.orelse]
        elif isinstance(node, ast.IfExp):
            branches = [node.body, node.orelse]
        elif isinstance(node, ast.Try):
            branches = [s for handler in node.handlers for s in handler.body]
        elif isinstance(node, ast.While):
            branches = node.body
        else:
            continue
        found.update(id(n) for n in _shallow(branches))
    return found


def _quote(text, node: ast.AST) -> str:
    """The call as written (`text(node)`: its source), on one line and cut short."""
    segment = re.sub(r"([(\[]) | ([)\]])", r"\1\2", " ".join(text(node).split()))
    return segment if len(segment) <= _TEXT else segment[: _TEXT - 5] + "...)"


def _fixed_placement(call: ast.Call, scope: Scope) -> ast.AST | None:
    """The call when it puts something on the current device or GPU0 whatever device the
    function was given: `.cuda()`, or `.to(X)` / `device=X` with X a CUDA device that
    does not come from a parameter."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "cuda" and not call.args and not call.keywords:
        return call
    targets = [k.value for k in call.keywords if k.arg == "device"]
    if isinstance(func, ast.Attribute) and func.attr == "to" and call.args:
        targets.append(call.args[0])
    for target in targets:
        held = values.evaluate(target, scope)
        if (held.current or held.gpu0) and not _from_parameter(target, scope, 0):
            return call
    return None


def _from_parameter(expr: ast.expr, scope: Scope, depth: int) -> bool:
    """Does `expr` read one of the function's parameters, directly or through the
    assignments (and `self.<attr>` assignments of its class) it reads?"""
    if depth > _DEPTH:
        return True  # cannot tell: assume the caller controls it
    for node in ast.walk(expr):
        if isinstance(node, ast.Name):
            if node.id in scope.params:
                return True
            found = scope.lookup_values(node.id)
            if found is not None and found[0] is scope and any(_from_parameter(v, scope, depth + 1) for v in found[1]):
                return True
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            cls = scope.enclosing_class
            for method, value in cls.self_attrs.get(node.attr, []) if cls else ():
                if _from_parameter(value, cls.child(method), depth + 1):
                    return True
    return False
