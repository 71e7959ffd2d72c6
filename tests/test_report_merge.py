"""`devlint report merge` and `devlint check --runtime-report A --runtime-report B`: the
reports of several nodes are one job's."""

import json
from pathlib import Path

from test_reports import leak, part


def write(path: Path, report: dict) -> Path:
    path.write_text(json.dumps(report))
    return path


def test_report_merge_joins_nodes_into_one_report(tmp_path, run_devlint):
    a = write(tmp_path / "a.json", part([leak(rank=1, pid=5)], ["cuda:1"], 5, rank=1))
    b = write(tmp_path / "b.json", part([leak(rank=9, pid=5, host="node-b")], ["cuda:1"], 5, rank=9, host="node-b"))
    code, out, err = run_devlint("report", "merge", a, b, "-o", tmp_path / "job.json")
    assert code == 0 and out == ""
    joined = json.loads((tmp_path / "job.json").read_text())
    [site] = joined["leaks"]
    assert site["count"] == 2 and [p["rank"] for p in site["processes"]] == [1, 9]
    assert "/p/train.py:41  DL001  ranks 1, 9: 2 calls" in err
    code, out, _ = run_devlint("report", "merge", a, b)
    assert code == 0 and json.loads(out)["leaks"][0]["count"] == 2  # without -o: to stdout


def test_report_merge_reads_a_job_directory_left_behind(tmp_path, run_devlint):
    from devlint.runtime.job import ProcessLog
    from devlint.runtime.report import Leak, Recorder

    log = ProcessLog(str(tmp_path), {"pid": 2**22 + 1, "rank": 0, "local_rank": 0, "host": "h", "parent": None, "allowed": ["cuda:0"], "command": "x"})
    Recorder(log).add(Leak("DL002", "m", "/p/t.py", 3, "f", "cuda:1", "allocation", "s"))
    code, out, err = run_devlint("report", "merge", tmp_path)
    assert code == 0 and json.loads(out)["leaks"][0]["processes"][0]["rank"] == 0
    assert "ended without finishing" not in out  # notes of the wait are not the report's


def test_report_merge_bad_input_is_one_line(tmp_path, run_devlint):
    (tmp_path / "bad.json").write_text("{")
    for source, message in ((tmp_path / "missing.json", "runtime report not found"), (tmp_path / "bad.json", "is not JSON"), (tmp_path, "holds no devlint process logs")):
        code, _, err = run_devlint("report", "merge", source)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_check_takes_several_runtime_reports(tmp_path, run_devlint):
    source = tmp_path / "train.py"
    source.write_text("import torch\n\n\ndef main(x):\n    return x.cuda()\n")
    site = {**leak(line=5), "filename": str(source), "source_line": "return x.cuda()"}
    a = write(tmp_path / "a.json", part([{**site, "processes": [{**site["processes"][0], "rank": 0}]}], ["cuda:0"], 1, rank=0))
    b = write(tmp_path / "b.json", part([{**site, "count": 3, "processes": [{**site["processes"][0], "rank": 1, "count": 3}]}], ["cuda:1"], 2, rank=1))
    code, out, _ = run_devlint("check", source, "--no-cache", "--output-format", "json", "--runtime-report", a, "--runtime-report", b)
    [finding] = json.loads(out)
    assert code == 1 and finding["code"] == "DL001" and finding["runtime"]["count"] == 4
