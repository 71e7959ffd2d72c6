"""Output is written as it is made (issue 25) and is the same bytes however the run went:
streamed JSON is what json.dumps of the whole list gives; serial, parallel and cached
runs print the same."""

import json
from pathlib import Path

import pytest

from devlint.output import stream

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_streamed_json_is_byte_for_byte_the_dumped_list(run_devlint):
    code, out, _ = run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=FIXTURES)
    findings = json.loads(out)
    assert code == 1 and len(findings) > 10
    assert out == json.dumps(findings, indent=2, ensure_ascii=False) + "\n"
    assert "".join(stream("json", [])) == "[]\n"


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_serial_parallel_and_cached_runs_print_the_same(run_devlint, tmp_path, fmt):
    import shutil

    tree = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, tree)
    serial = run_devlint("check", ".", "--output-format", fmt, "--no-cache", "-j", "1", cwd=tree)
    parallel = run_devlint("check", ".", "--output-format", fmt, "--no-cache", "-j", "2", cwd=tree)
    cold = run_devlint("check", ".", "--output-format", fmt, cwd=tree)
    warm = run_devlint("check", ".", "--output-format", fmt, cwd=tree)
    assert serial == parallel == cold == warm
    assert serial[0] == 1 and serial[1]
