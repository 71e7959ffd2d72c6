import json
import pickle
import sys

import pytest
import torch

from devlint.runtime import report
from devlint.runtime.oracle import GpuUsage
from devlint.runtime.report import DeviceLeakError, Leak, Recorder


def _leak(line=3, code="DL001", device="cuda:0"):
    return Leak(code, "`.cuda()` uses the current device, cuda:0", "/p/train.py", line, "main", device, "allocation", "use `.to(device)`")


def test_requests_at_one_site_aggregate():
    recorder = Recorder()
    for _ in range(3):
        record = recorder.add(_leak())
        recorder.update(record, 16, False)
    recorder.add(_leak(line=4))
    recorder.add(_leak(device="cuda:2"))
    leaks = recorder.leaks()
    assert [(leak.line, leak.device, leak.count, leak.bytes) for leak in leaks] == [(3, "cuda:0", 3, 48), (3, "cuda:2", 1, 0), (4, "cuda:0", 1, 0)]


def test_a_snapshot_separates_what_came_after_it():
    recorder = Recorder()
    recorder.update(recorder.add(_leak()), 8, False)
    mark = recorder.snapshot()
    assert recorder.leaks(since=mark) == []
    recorder.update(recorder.add(_leak()), 8, True)
    recorder.add(_leak(line=9))
    after = recorder.leaks(since=mark)
    assert [(leak.line, leak.count, leak.bytes) for leak in after] == [(3, 1, 8), (9, 1, 0)]
    assert recorder.leaks()[0].count == 2  # the session keeps everything
    recorder.reset()
    assert recorder.leaks() == []


def test_a_call_that_created_the_context_says_so():
    leak = _leak()
    leak.created_context = True
    assert leak.to_json()["message"].endswith("this created the CUDA context on cuda:0 (~0.5 GiB)")


def test_the_report_follows_the_contract(tmp_path):
    recorder = Recorder()
    recorder.update(recorder.add(_leak()), 16, True)
    gpus = [GpuUsage("cuda:0", 0, False, True, 2 << 20, 518 << 20), GpuUsage("cuda:1", 1, True, True, 4 << 20, None)]
    me = {"pid": 41, "rank": None, "local_rank": None, "host": "node-a"}
    built = report.build("python train.py", ["cuda:1"], recorder.leaks(), gpus, ["a note"], process=me)
    path = tmp_path / "out" / "report.json"
    report.write(built, path)
    loaded = json.loads(path.read_text())
    assert loaded["version"] == 1 and isinstance(loaded["version"], int)
    assert set(loaded) == {"version", "command", "allowed", "leaks", "gpus", "notes", "exercised", "processes"}
    assert set(loaded["leaks"][0]) == {
        "code", "message", "filename", "line", "function", "device", "kind", "count", "bytes", "origin", "stack",
        "suggestion", "created_context", "source_line", "option", "processes",
    }
    assert loaded["leaks"][0]["processes"] == [{**me, "count": 1, "bytes": 16}]  # rank null outside a distributed job
    assert loaded["processes"] == [{**me, "parent": None, "allowed": ["cuda:1"], "finished": True}]
    assert loaded["leaks"][0]["kind"] in ("allocation", "context")
    assert loaded["gpus"][0] == {"device": "cuda:0", "physical": 0, "allowed": False, "context": True, "reserved": 2 << 20, "memory": 518 << 20, **me}
    assert loaded["leaks"][0]["created_context"] is True


def test_exercised_sites_are_counted_for_the_report(tmp_path, attempt):
    from devlint.runtime.tracer import Tracer

    with Tracer("cuda:1", exercised=True) as tracer:
        attempt(lambda: torch.zeros(2, device="cuda:1"))  # judged: allowed, no leak
        line = sys._getframe().f_lineno - 1
        attempt(lambda: torch.zeros(2, device="cuda"))
    built = tracer.report()
    assert {"filename": __file__, "line": line, "count": 1} in built["exercised"]
    (leak,) = built["leaks"]
    assert leak["source_line"] == 'attempt(lambda: torch.zeros(2, device="cuda"))'


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "report.json"
    with pytest.raises(TypeError):
        report.write({"unserialisable": object()}, path)
    assert list(tmp_path.iterdir()) == []


def test_the_strict_error_names_the_site_and_survives_pickling():
    error = DeviceLeakError.for_leak(_leak(), ["cuda:1"])
    assert str(error).startswith("DL001 at /p/train.py:3: `.cuda()` uses the current device, cuda:0 (this run allows cuda:1). Fix: use `.to(device)`")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_a_report_path_that_cannot_be_written_is_known_before_the_run(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError):
        report.check_writable(tmp_path / "a-file" / "report.json")
    with pytest.raises(OSError):
        report.check_writable(tmp_path)
    report.check_writable(tmp_path / "new" / "report.json")
    assert list((tmp_path / "new").iterdir()) == []  # the probe leaves nothing behind
