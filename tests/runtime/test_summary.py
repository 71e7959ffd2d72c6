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
