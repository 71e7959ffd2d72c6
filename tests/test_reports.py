"""Joining runtime reports: processes of a job, nodes of a cluster; and the cross-rank check."""

from devlint import reports


def leak(line=41, rank=None, pid=100, count=1, nbytes=0, host="node-a", created=False, device="cuda:0"):
    return {
        "code": "DL001", "message": "`.cuda()` uses the current device, cuda:0" + ("; this created the CUDA context on cuda:0 (~0.5 GiB)" if created else ""),
        "filename": "/p/train.py", "line": line, "function": "main", "device": device, "kind": "allocation", "count": count,
        "bytes": nbytes, "origin": None, "stack": [], "suggestion": "use `.to(device)`", "created_context": created, "source_line": "x.cuda()",
        "processes": [{"pid": pid, "rank": rank, "local_rank": rank, "host": host, "count": count, "bytes": nbytes}],
    }


def part(leaks, allowed, pid, rank=None, host="node-a", gpus=()):
    return {
        "version": 1, "command": "python train.py", "allowed": allowed, "leaks": leaks, "gpus": list(gpus), "notes": [], "exercised": [],
        "processes": [{"pid": pid, "rank": rank, "local_rank": rank, "host": host, "parent": None, "allowed": allowed, "finished": True}],
    }


def test_one_site_hit_by_several_ranks_is_one_leak_that_names_them():
    parts = [part([leak(rank=r, pid=100 + r, count=2, nbytes=8, created=r == 3)], [f"cuda:{r}"], 100 + r, rank=r) for r in (3, 1, 2)]
    joined = reports.join(parts)
    [site] = joined["leaks"]
    assert (site["count"], site["bytes"], site["created_context"]) == (6, 24, True)
    assert site["message"].endswith("this created the CUDA context on cuda:0 (~0.5 GiB)")
    assert [p["rank"] for p in site["processes"]] == [1, 2, 3]
    assert joined["allowed"] == ["cuda:1", "cuda:2", "cuda:3"]
    assert [p["rank"] for p in joined["processes"]] == [1, 2, 3]


def test_nodes_join_again_and_old_reports_count_as_one_unknown_process():
    node_a = reports.join([part([leak(rank=1, pid=5)], ["cuda:1"], 5, rank=1)])
    old = part([{k: v for k, v in leak(line=7).items() if k != "processes"}], ["cuda:1"], 9)
    joined = reports.join([node_a, part([leak(rank=9, pid=5, host="node-b")], ["cuda:1"], 5, rank=9, host="node-b"), old])
    by_line = {l["line"]: l for l in joined["leaks"]}
    assert [(p["rank"], p["host"]) for p in by_line[41]["processes"]] == [(1, "node-a"), (9, "node-b")]
    assert by_line[7]["processes"] == [{"pid": None, "rank": None, "local_rank": None, "host": None, "count": 1, "bytes": 0}]


def gpu(device, physical, allowed, context, rank, pid, memory=None):
    return {"device": device, "physical": physical, "allowed": allowed, "context": context, "reserved": 0, "memory": memory, "pid": pid, "rank": rank, "local_rank": rank, "host": "node-a"}


def test_a_context_on_another_ranks_gpu_is_dl105_mapped_through_physical_indices():
    # rank 1 sees every GPU; rank 0 was launched with CUDA_VISIBLE_DEVICES=2, so its cuda:0 is physical GPU 2
    rank0 = part([], ["cuda:0"], 10, rank=0, gpus=[gpu("cuda:0", 2, True, True, 0, 10)])
    rank1 = part([leak(line=12, rank=1, pid=11, created=True, device="cuda:2")], ["cuda:1"], 11, rank=1,
                 gpus=[gpu("cuda:1", 1, True, True, 1, 11), gpu("cuda:2", 2, False, True, 1, 11, memory=518 << 20)])
    joined = reports.join([rank0, rank1])
    [found] = reports.contexts_on_other_ranks(joined)
    assert (found["code"], found["line"], found["device"]) == ("DL105", 12, "cuda:2")
    assert found["message"] == "rank 1 holds a CUDA context on cuda:2 (physical GPU 2), which is rank 0's GPU (518 MiB there by NVML)"
    assert found["processes"][0]["rank"] == 1
    clean = reports.join([rank0, part([], ["cuda:1"], 11, rank=1, gpus=[gpu("cuda:1", 1, True, True, 1, 11)])])
    assert reports.contexts_on_other_ranks(clean) == []
