"""The selected stage: a finding inside a function that only runs after its callers chose the GPU.

A file alone cannot tell that `train()` is only ever called by `main()` after
`select_device(opt.device)` set CUDA_VISIBLE_DEVICES (yolov5), or after
`torch.cuda.set_device(local_rank)`: there the current device, and for
CUDA_VISIBLE_DEVICES the GPUs counted from 0, are the ones the user chose. This stage asks
the project: a finding of a current-device rule is dropped when every call of its function
in the checked files comes after its caller selected the device (or from a function that is
itself only called so); for rules about GPU0 and every visible GPU, only a
CUDA_VISIBLE_DEVICES selection counts (set_device does not hide GPU0). A function with no
call in the checked files keeps its findings.
"""

from __future__ import annotations

from devlint.findings import Finding
from devlint.static import analyze
from devlint.static.callers import ProjectCalls, Target, _target, functions_of

# Rules whose finding is the current device: any selection before the call makes it the chosen one.
CURRENT_DEVICE = frozenset({"DL001", "DL002", "DL003", "DL004", "DL006", "DL010", "DL011", "DL020"})
# Rules about GPU0 or every visible GPU: only CUDA_VISIBLE_DEVICES set before the call helps.
VISIBLE_DEVICES = frozenset({"DL007", "DL008", "DL012"})
BOUND = 4  # callers followed up


class CallerSelections:
    def __init__(self, works: list, index, calls: ProjectCalls | None = None):
        self._calls = calls or ProjectCalls(works, index)
        self._index = index
        self._decided: dict[tuple[str, bool], bool] = {}
        self._functions: dict[str, list] = {}

    def drop(self, findings: list[Finding]) -> list[Finding]:
        """`findings` without those whose function only runs after its callers selected the GPU."""
        return [f for f in findings if not self._excused(f, self._functions_in(f.filename))]

    def drop_in_text(self, findings: list[Finding], display: str, module: str, data: bytes) -> list[Finding]:
        """The same, for findings of new text of a file (the fix stage's rechecks)."""
        if not any(f.code in CURRENT_DEVICE | VISIBLE_DEVICES for f in findings):
            return findings
        parsed = analyze.parse(data, display)
        if parsed.tree is None:
            return findings
        ctx = analyze.make_context(parsed, display, module, frozenset({"callers"}), self._index)
        functions = [(node, _target(ctx, scope, q)) for node, scope in functions_of(ctx) if (q := self._index.qualname_of(scope))]
        return [f for f in findings if not self._excused(f, functions)]

    def _functions_in(self, filename: str) -> list:
        if filename not in self._functions:
            ctx = self._calls.context(filename)
            found = []
            if ctx is not None:
                for node, scope in functions_of(ctx):
                    qualname = self._index.qualname_of(scope)
                    if qualname:
                        found.append((node, _target(ctx, scope, qualname)))
            self._functions[filename] = found
        return self._functions[filename]

    def _excused(self, finding: Finding, functions: list) -> bool:
        if finding.code not in CURRENT_DEVICE | VISIBLE_DEVICES or finding.cell is not None:
            return False
        row = finding.location.row
        inside = [(node, target) for node, target in functions if node.lineno <= row <= node.end_lineno]
        if not inside:
            return False
        _, target = max(inside, key=lambda pair: pair[0].lineno)  # the innermost function
        return self._selected_by_callers(target, finding.code in VISIBLE_DEVICES, BOUND)

    def _selected_by_callers(self, target: Target, visible_only: bool, depth: int) -> bool:
        key = (target.qualname, visible_only)
        if key not in self._decided:
            self._decided[key] = False  # a call cycle does not select anything
            calls = self._calls.calls_to(target)
            self._decided[key] = bool(calls) and all(
                (call.visible if visible_only else call.selected)
                or (depth > 1 and call.enclosing is not None and self._selected_by_callers(call.enclosing, visible_only, depth - 1))
                for call in calls
            )
        return self._decided[key]
