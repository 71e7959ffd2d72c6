"""The summary `devlint run` prints on stderr: read at a glance, then act on each line.

First each visible GPU: this process's memory there and whether the run allowed it;
then each leak site with its code, count, bytes and the fix.
"""

from __future__ import annotations

from devlint.runtime.attribution import short_path


def size(nbytes: int | None) -> str:
    if nbytes is None:
        return "?"
    if nbytes < 1024:
        return f"{nbytes} B"
    value = nbytes / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render(report: dict) -> str:
    leaks = report["leaks"]
    allowed = ", ".join(report["allowed"])
    if leaks:
        lines = [f"devlint: {len(leaks)} leak site{'s' if len(leaks) != 1 else ''} on GPUs this run may not use (allowed: {allowed})"]
    else:
        lines = [f"devlint: no leaks (allowed: {allowed})"]
    if report["gpus"]:
        lines.append(f"  {'GPU':<8}{'physical':<10}{'allowed':<9}{'context':<9}{'memory':<11}torch reserved")
        for gpu in report["gpus"]:
            physical = "?" if gpu["physical"] is None else str(gpu["physical"])
            lines.append(
                f"  {gpu['device']:<8}{physical:<10}{'yes' if gpu['allowed'] else 'NO':<9}"
                f"{'yes' if gpu['context'] else 'no':<9}{size(gpu['memory']):<11}{size(gpu['reserved'])}"
            )
    for leak in leaks:
        calls = f"{leak['count']} call{'s' if leak['count'] != 1 else ''}"
        lines.append("")
        lines.append(f"  {short_path(leak['filename'])}:{leak['line']}  {leak['code']}  {calls}, {size(leak['bytes'])} on {leak['device']}")
        lines.append(f"    {leak['message']}")
        if leak["origin"]:
            lines.append(f"    inside: {leak['origin']}")
        lines.append(f"    fix: {leak['suggestion']}")
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    if leaks:
        lines.append("  (`devlint rule CODE` explains each code)")
    return "\n".join(lines) + "\n"
