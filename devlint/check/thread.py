"""The thread stage: a device where the code has none, taken from the callers.

A check that finds a leak with no device expression in scope asks for a Threading
fix: add a `device` parameter to the enclosing function and use it at the site. This
stage plans it across the project: every caller that has a device passes it
(`device=self.device`, `device=args.device`, `device=x.device`); a caller that has
none gains the parameter too and passes it on, up the call chain, at most BOUND
functions deep. Callers with no device and no way to take one (module-level code,
nested functions) are named in the fix message, never guessed. Plans are memoised per
function, so the findings that share one (a helper's three `.type(type)` lines, its
callers' `x.type()`) share its operations, and the fix stage applies them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from devlint.check.selected import CallerSelections
from devlint.findings import AddArgument, AddParameter, Applicability, Finding, Fix, Operation, Threading
from devlint.static.callers import ProjectCalls, Target

BOUND = 6  # functions one fix may thread a device through


@dataclass
class _Chain:
    """What threading a device into one function takes: operations, and who provides it."""

    operations: set[Operation] = field(default_factory=set)
    threaded: list[str] = field(default_factory=list)  # functions given the parameter, first the target
    providers: list[str] = field(default_factory=list)  # "path:line (`expr`)"
    without: list[str] = field(default_factory=list)  # "path:line (why)"
    failure: str | None = None


def _short(qualname: str) -> str:
    return ".".join(qualname.split(".")[-2:]) if qualname[:1].isupper() else qualname.rsplit(".", 1)[-1]


def _plan(request: Threading, calls: ProjectCalls) -> _Chain:
    chain = _Chain()
    target = calls.target_at(request.target, request.function)
    if target is None:
        chain.failure = "its definition could not be read again"
        return chain
    if request.type_string is not None:
        for site in calls.type_sites(target, request.type_string):
            if site.factory is None:
                chain.failure = f"the tensor at {site.where} is not built by a factory that takes `device=`"
                return chain
            chain.operations.add(AddArgument(site.factory, "device", request.parameter))
    queue: list[tuple[Target, str, int]] = [(target, request.default, 1)]
    seen = {target.span}
    while queue:
        function, default, depth = queue.pop(0)
        chain.operations.add(AddParameter(function.span, function.qualname, request.parameter, default))
        chain.threaded.append(_short(function.qualname))
        for call in calls.calls_to(function, request.type_string if depth == 1 else None):
            if request.parameter in call.passes:
                continue
            if call.unknown_args:
                chain.without.append(f"{call.where} (passes *args/**kwargs)")
                continue
            if request.type_string is not None and depth == 1:
                if call.type_string_of is None:
                    chain.without.append(f"{call.where} (passes no `x.type()`)")
                else:
                    value = f"{call.type_string_of}.device"
                    chain.operations.add(AddArgument(call.span, request.parameter, value))
                    chain.providers.append(f"{call.where} (`{value}`)")
                continue
            if call.caller is not None and call.caller.span in seen:
                chain.operations.add(AddArgument(call.span, request.parameter, request.parameter))
                continue
            if call.device is not None:
                chain.operations.add(AddArgument(call.span, request.parameter, call.device))
                chain.providers.append(f"{call.where} (`{call.device}`)")
                continue
            if call.caller is None:
                chain.without.append(f"{call.where} ({call.why_not})")
                continue
            if depth >= BOUND:
                chain.failure = f"the way up to a device is longer than {BOUND} functions"
                return chain
            chain.operations.add(AddArgument(call.span, request.parameter, request.parameter))
            seen.add(call.caller.span)
            queue.append((call.caller, "None", depth + 1))
    return chain


def _message(request: Threading, chain: _Chain, files: list[str]) -> str:
    parameter = f"`{request.parameter}={request.default}`"
    head, *through = chain.threaded
    text = f"Add {parameter} to `{head}` and use it here"
    if through:
        text += f"; {', '.join(f'`{name}`' for name in through)} take{'s' * (len(through) == 1)} it too and pass it on"
    if chain.providers:
        text += f"; the device comes from {', '.join(chain.providers)}"
    else:
        text += "; no caller in the checked files has a device to pass yet"
    if chain.without:
        text += f"; callers left without one: {', '.join(chain.without)}"
    if len(files) > 1:
        text += f" (changes {len(files)} files: {', '.join(files)})"
    return text


def project_findings(linted) -> tuple[list[Finding], CallerSelections]:
    """The findings of a lint result after the project-wide stages: those whose every
    caller selected the GPU first are dropped (selected.py), the threaded fixes planned.
    The selections come back too: the fix stage's re-checks drop the same findings."""
    selections = CallerSelections(linted.works, linted.index, omissions_reported="DL012" in linted.enabled)
    return plan(selections.drop(linted.findings), linted.works, linted.index, selections.calls), selections


# Sites whose `None` default means the current device (`.cuda(device)`), as an unindexed
# "cuda" does: they share a parameter that defaults to "cuda" (DL012's, the callee's default).
_NONE_IS_CURRENT = frozenset({"DL001", "DL011"})
_UNINDEXED_CUDA = frozenset({'"cuda"', "'cuda'"})


def _pending(finding: Finding) -> Threading | None:
    fix = finding.fix
    request = fix.threading if fix is not None else None
    return request if request is not None and request.plan is None else None


def _group(request: Threading) -> tuple:
    return (request.target, request.parameter, request.type_string)


def _joins(code: str, asked: str, default: str) -> bool:
    """Does a site that asked for `asked` keep its behaviour under a parameter defaulting to `default`?"""
    return asked == default or (code in _NONE_IS_CURRENT and asked == "None" and default in _UNINDEXED_CUDA)


def _defaults(findings: list[Finding]) -> dict[tuple, str]:
    """The one default each function's new parameter takes, whichever findings ask for it:
    several fixes through one function add one parameter. The first finding that needs a
    particular default sets it (`.cuda(device)` sites need none: they join an unindexed
    "cuda"); a finding whose default then differs is not threaded (`plan` says why)."""
    needed: dict[tuple, str] = {}
    groups = set()
    for finding in findings:
        request = _pending(finding)
        if request is None:
            continue
        groups.add(_group(request))
        if not (finding.code in _NONE_IS_CURRENT and request.default == "None"):
            needed.setdefault(_group(request), request.default)
    return {group: needed.get(group, "None") for group in groups}


def plan(findings: list[Finding], works: list, index, calls: ProjectCalls | None = None) -> list[Finding]:
    """`findings` with every Threading request planned, or made display-only with the reason
    (`calls`: the project's call sites, when an earlier stage already read some). The
    requests for one function share one plan: one parameter, one default."""
    if not any(_pending(f) is not None for f in findings):
        return findings
    calls = calls or ProjectCalls(works, index)
    notebooks = {w.file.display for w in works if w.notebook is not None}
    defaults = _defaults(findings)
    chains: dict[tuple, _Chain] = {}
    out = []
    for finding in findings:
        fix = finding.fix
        request = _pending(finding)
        if request is None:
            out.append(finding)
            continue
        default = defaults[_group(request)]
        if not _joins(finding.code, request.default, default):
            why = f"another fix in this run gives `{_short(request.function)}` the parameter `{request.parameter}={default}`"
            out.append(replace(finding, fix=Fix(Applicability.DISPLAY_ONLY, f"{fix.message} (devlint cannot thread one in: {why})")))
            continue
        request = replace(request, default=default)
        key = (request.target, request.parameter, request.default, request.type_string)
        if key not in chains:
            chains[key] = _plan(request, calls)
        chain = chains[key]
        operations = tuple(sorted(chain.operations | set(request.site), key=lambda op: (op.span, type(op).__name__)))
        files = sorted({op.span.filename for op in operations})
        failure = chain.failure or next((f"{name} is a notebook" for name in files if name in notebooks), None)
        if failure is not None:
            new_fix = Fix(Applicability.DISPLAY_ONLY, f"{fix.message} (devlint cannot thread one in: {failure})")
        else:
            new_fix = Fix(Applicability.UNSAFE, _message(request, chain, files), (), replace(request, plan=operations))
        out.append(replace(finding, fix=new_fix))
    return out
