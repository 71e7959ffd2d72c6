"""The summary `devlint run` prints on stderr: read at a glance, then act on each line.

First each visible GPU: each process's memory there and whether the run allowed it;
then each leak site with its code, count, bytes and the fix. A site hit by several
processes is one entry that says which: "ranks 1-7", "3 processes".
"""

from __future__ import annotations

import os


def short_path(filename: str) -> str:
    """A path relative to the working directory when it is under it, for people to read."""
    if filename.startswith("<"):
        return filename
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative


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


def spans(numbers) -> str:
    """`1-3, 5`: sorted numbers with runs folded."""
    ordered = sorted(set(numbers))
    parts, start = [], None
    for position, number in enumerate(ordered):
        if start is None:
            start = number
        if position + 1 == len(ordered) or ordered[position + 1] != number + 1:
            parts.append(str(start) if start == number else f"{start}-{number}")
            start = None
    return ", ".join(parts)


def who(processes: list[dict], job_size: int) -> str:
    """Which processes leaked at a site, or "" when the job is one process."""
    if job_size <= 1 and len(processes) <= 1:
        return ""
    ranks = [p["rank"] for p in processes if p.get("rank") is not None]
    count = len({(p.get("host"), p.get("pid")) for p in processes})
    several = f"{count} process{'es' if count != 1 else ''}"
    if ranks:
        text = f"rank{'s' if len(set(ranks)) != 1 else ''} {spans(ranks)}"
        return text if count == len(set(ranks)) else f"{text} ({several})"
    pids = ", ".join(str(p["pid"]) for p in processes if p.get("pid") is not None)
    return f"{several} (pid {pids})" if pids else several


def _process_label(gpu: dict) -> str:
    if gpu.get("rank") is not None:
        return f"rank {gpu['rank']}"
    return f"pid {gpu['pid']}" if gpu.get("pid") is not None else ""


def render(report: dict) -> str:
    leaks = report["leaks"]
    allowed = ", ".join(report["allowed"])
    processes = report.get("processes", [])
    traced = f" in {len(processes)} processes" if len(processes) > 1 else ""
    if leaks:
        lines = [f"devlint: {len(leaks)} leak site{'s' if len(leaks) != 1 else ''} on GPUs this run may not use{traced} (allowed: {allowed})"]
    else:
        lines = [f"devlint: no leaks{traced} (allowed: {allowed})"]
    gpus = report["gpus"]
    several = len({(g.get("host"), g.get("pid")) for g in gpus}) > 1
    if gpus:
        prefix = f"{'process':<10}" if several else ""
        lines.append(f"  {prefix}{'GPU':<8}{'physical':<10}{'allowed':<9}{'context':<9}{'memory':<11}torch reserved")
        for gpu in gpus:
            if several and not (gpu["context"] or gpu["memory"]):
                continue  # in a job, only the GPUs a process actually holds
            physical = "?" if gpu["physical"] is None else str(gpu["physical"])
            label = f"{_process_label(gpu):<10}" if several else ""
            lines.append(
                f"  {label}{gpu['device']:<8}{physical:<10}{'yes' if gpu['allowed'] else 'NO':<9}"
                f"{'yes' if gpu['context'] else 'no':<9}{size(gpu['memory']):<11}{size(gpu['reserved'])}"
            )
    for leak in leaks:
        calls = f"{leak['count']} call{'s' if leak['count'] != 1 else ''}"
        by = who(leak.get("processes", []), len(processes))
        lines.append("")
        where = short_path(leak["filename"]) + (f":{leak['line']}" if leak["line"] else "")  # no line is better than a false one
        lines.append(f"  {where}  {leak['code']}  {by + ': ' if by else ''}{calls}, {size(leak['bytes'])} on {leak['device']}")
        lines.append(f"    {leak['message']}")
        if leak["origin"]:
            lines.append(f"    inside: {leak['origin']}")
        lines.append(f"    fix: {leak['suggestion']}")
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    if leaks:
        lines.append("  (`devlint rule CODE` explains each code)")
    return "\n".join(lines) + "\n"
