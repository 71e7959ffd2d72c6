from devlint.runtime import summary


def _report(leaks=(), gpus=(), notes=()):
    return {"version": 1, "command": None, "allowed": ["cuda:1"], "leaks": list(leaks), "gpus": list(gpus), "notes": list(notes)}


GPUS = [
    {"device": "cuda:0", "physical": 0, "allowed": False, "context": True, "reserved": 2 << 20, "memory": 518 << 20},
    {"device": "cuda:1", "physical": 1, "allowed": True, "context": True, "reserved": 20 << 20, "memory": None},
]

LEAK = {
    "code": "DL001", "message": "`.cuda()` uses the current device, cuda:0", "filename": "/nowhere/train.py", "line": 12,
    "function": "main", "device": "cuda:0", "kind": "allocation", "count": 3, "bytes": 3 << 10,
    "origin": "/venv/site-packages/lib.py:4 in f", "stack": [], "suggestion": "use `.to(device)`",
}


def test_sizes_read_at_a_glance():
    assert [summary.size(n) for n in (None, 0, 1023, 2048, 518 << 20, 3 << 30)] == ["?", "0 B", "1023 B", "2.0 KiB", "518.0 MiB", "3.0 GiB"]


def test_a_clean_run_says_so_with_each_gpu():
    text = summary.render(_report(gpus=GPUS))
    assert text.splitlines()[0] == "devlint: no leaks (allowed: cuda:1)"
    assert "cuda:0  0         NO       yes      518.0 MiB  2.0 MiB" in text
    assert "cuda:1  1         yes      yes      ?" in text


def test_each_leak_site_shows_code_count_bytes_and_fix():
    lines = summary.render(_report([LEAK], GPUS, ["NVML is not available"])).splitlines()
    assert lines[0] == "devlint: 1 leak site on GPUs this run may not use (allowed: cuda:1)"
    assert "  /nowhere/train.py:12  DL001  3 calls, 3.0 KiB on cuda:0" in lines
    assert "    fix: use `.to(device)`" in lines
    assert "    inside: /venv/site-packages/lib.py:4 in f" in lines
    assert "  note: NVML is not available" in lines


def _in(rank, pid):
    return {"pid": pid, "rank": rank, "local_rank": rank, "host": "h", "count": 1, "bytes": 0}


def test_a_site_hit_by_many_ranks_is_one_entry_that_names_them():
    leak = {**LEAK, "count": 7, "processes": [_in(rank, 100 + rank) for rank in (1, 2, 3, 4, 5, 6, 7)]}
    processes = [{"pid": 100 + r, "rank": r} for r in range(8)]
    text = summary.render({**_report([leak]), "processes": processes})
    assert text.splitlines()[0] == "devlint: 1 leak site on GPUs this run may not use in 8 processes (allowed: cuda:1)"
    assert "  /nowhere/train.py:12  DL001  ranks 1-7: 7 calls, 3.0 KiB on cuda:0" in text.splitlines()


def test_who_leaked_reads_at_a_glance():
    assert summary.spans([7, 1, 2, 3, 5]) == "1-3, 5, 7"
    assert summary.who([_in(1, 5)], 1) == ""  # a one-process run says nothing more
    assert summary.who([_in(1, 5)], 3) == "rank 1"
    assert summary.who([_in(1, 5), _in(1, 6), _in(2, 7)], 4) == "ranks 1-2 (3 processes)"  # a rank and its DataLoader worker
    assert summary.who([_in(None, 5), _in(None, 6)], 3) == "2 processes (pid 5, 6)"


def test_a_job_shows_each_process_that_holds_a_gpu():
    gpus = [{**GPUS[0], "pid": 10, "rank": 1}, {**GPUS[1], "pid": 10, "rank": 1}, {**GPUS[0], "context": False, "memory": None, "pid": 11, "rank": 0}]
    lines = summary.render(_report(gpus=gpus)).splitlines()
    assert lines[1].split() == ["process", "GPU", "physical", "allowed", "context", "memory", "torch", "reserved"]
    assert lines[2].startswith("  rank 1    cuda:0") and len(lines) == 4  # rank 0 holds nothing there
