"""Runtime reports joined into one: the processes of a job, the nodes of a cluster.

Every leak entry of a report names the processes that leaked at its site, in `processes`
(`pid`, `rank`, `local_rank`, `host`, `count`, `bytes`; rank and local rank are null
outside a distributed job). Joining reports adds up each site's count and bytes and
concatenates those entries, so one line hit by seven ranks is one leak with seven
processes, and the summary can say "ranks 1-7". The same join serves the owner of a
`devlint run` job (its process logs), `devlint report merge` (the reports of several
nodes) and `devlint check --runtime-report A --runtime-report B`.

Needs neither torch nor devlint's runtime: reports are plain JSON data here.
"""

from __future__ import annotations

SITE = ("code", "filename", "line", "device")
NO_PROCESS = {"pid": None, "rank": None, "local_rank": None, "host": None}


def _process_order(entry: dict) -> tuple:
    rank = entry.get("rank")
    return (rank is None, rank if rank is not None else 0, entry.get("host") or "", entry.get("pid") or 0)


def _processes_of(leak: dict) -> list[dict]:
    """The leak's per-process entries; a report from before they existed counts as one unknown process."""
    found = leak.get("processes")
    if found:
        return [dict(entry) for entry in found]
    return [{**NO_PROCESS, "count": leak.get("count", 0), "bytes": leak.get("bytes", 0)}]


def join(reports: list[dict], command: str | None = None) -> dict:
    """One report for all of `reports` (each in the schema of devlint/runtime/report.py)."""
    leaks: dict[tuple, dict] = {}
    for report in reports:
        for leak in report.get("leaks", []):
            key = tuple(leak.get(field) for field in SITE)
            processes = _processes_of(leak)
            joined = leaks.get(key)
            if joined is None:
                leaks[key] = {**leak, "processes": processes}
                continue
            joined["count"] += leak.get("count", 0)
            joined["bytes"] += leak.get("bytes", 0)
            joined["processes"] += processes
            if leak.get("created_context") and not joined.get("created_context"):
                joined["created_context"], joined["message"] = True, leak["message"]
    for leak in leaks.values():
        leak["processes"].sort(key=_process_order)
    allowed = sorted({a for r in reports for a in r.get("allowed", []) if a != "cpu"}, key=_device_order)
    commands = list(dict.fromkeys(r.get("command") for r in reports if r.get("command")))
    exercised: dict[tuple, int] = {}
    for report in reports:
        for entry in report.get("exercised", []):
            key = (entry["filename"], entry["line"])
            exercised[key] = exercised.get(key, 0) + entry.get("count", 1)
    return {
        "version": max((r.get("version", 1) for r in reports), default=1),
        "command": command if command is not None else ("; ".join(commands) if commands else None),
        "allowed": allowed or ["cpu"],
        "leaks": sorted(leaks.values(), key=lambda l: (l["filename"], l["line"], l["code"], l["device"])),
        "gpus": [gpu for r in reports for gpu in r.get("gpus", [])],
        "notes": list(dict.fromkeys(n for r in reports for n in r.get("notes", []))),
        "exercised": [{"filename": f, "line": n, "count": c} for (f, n), c in sorted(exercised.items())],
        "processes": sorted((p for r in reports for p in r.get("processes", [])), key=_process_order),
    }


def _device_order(label: str) -> tuple:
    kind, _, index = label.partition(":")
    return (kind, int(index) if index.isdigit() else -1)


def contexts_on_other_ranks(report: dict) -> list[dict]:
    """DL105: a rank holding a CUDA context on the GPU that another rank of its host was given.

    Read from the `gpus` rows of every rank (each maps its own numbering to physical GPUs
    through its own CUDA_VISIBLE_DEVICES), so it holds when ranks see different devices."""
    rows = [g for g in report.get("gpus", []) if g.get("rank") is not None and g.get("physical") is not None]
    owners: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("allowed"):
            owners.setdefault((row.get("host"), row["physical"]), []).append(row)
    found = []
    for row in rows:
        if row.get("allowed") or not (row.get("context") or row.get("memory")):
            continue
        others = sorted({o["rank"] for o in owners.get((row.get("host"), row["physical"]), []) if o["rank"] != row["rank"]})
        if not others:
            continue
        site = _site_of(report, row)
        whose = "rank " + ", ".join(map(str, others))
        memory = f" ({row['memory'] / 2**20:.0f} MiB there by NVML)" if row.get("memory") else ""
        found.append({
            "code": "DL105",
            "message": f"rank {row['rank']} holds a CUDA context on {row['device']} (physical GPU {row['physical']}), which is {whose}'s GPU{memory}",
            "filename": site.get("filename", "<unknown>"),
            "line": site.get("line", 0),
            "function": site.get("function", ""),
            "device": row["device"],
            "kind": "context",
            "count": 1,
            "bytes": row.get("memory") or 0,
            "origin": None,
            "stack": [],
            "suggestion": "call `torch.cuda.set_device(local_rank)` before any CUDA work, and pass `device_id=torch.device(\"cuda\", local_rank)` to `init_process_group`",
            "created_context": True,
            "source_line": site.get("source_line"),
            "processes": [{"pid": row.get("pid"), "rank": row["rank"], "local_rank": row.get("local_rank"), "host": row.get("host"), "count": 1, "bytes": row.get("memory") or 0}],
        })
    return found


def _site_of(report: dict, row: dict) -> dict:
    """The leak of `row`'s process on `row`'s device: the one that created the context, if known."""
    candidates = [
        leak for leak in report.get("leaks", [])
        if leak["device"] == row["device"] and any(p.get("pid") == row.get("pid") and p.get("host") == row.get("host") for p in leak.get("processes", []))
    ]
    candidates.sort(key=lambda leak: not leak.get("created_context"))
    return candidates[0] if candidates else {}
