"""JSON output validates against the documented schema (docs/findings.schema.json)."""

from pathlib import Path
import json

import jsonschema

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = json.loads((ROOT / "docs" / "findings.schema.json").read_text())


def test_json_output_of_the_fixtures_validates(run_devlint):
    code, out, _ = run_devlint("check", ROOT / "fixtures", "--output-format", "json", "--no-cache")
    findings = json.loads(out)
    jsonschema.validate(findings, SCHEMA)
    assert findings and code == 1
    # every fix either applies (has edits) or is a suggestion
    assert any(f["fix"]["edits"] for f in findings)
    assert all(f["url"].endswith(f"{f['code']}.md") for f in findings)


def test_json_output_with_no_findings_is_an_empty_list(run_devlint, tmp_path):
    (tmp_path / "ok.py").write_text("import torch\nx = torch.zeros(3, device='cuda:1')\n")
    code, out, _ = run_devlint("check", tmp_path, "--output-format", "json", "--no-cache")
    assert code == 0
    assert json.loads(out) == []


def test_json_edits_reproduce_the_fix(run_devlint, tmp_path):
    """Applying a finding's edits by hand gives what --fix writes."""
    source = "import torch\n\ndef f(x, device):\n    return x.cuda()\n"
    (tmp_path / "m.py").write_text(source)
    _, out, _ = run_devlint("check", tmp_path, "--output-format", "json", "--no-cache")
    (finding,) = json.loads(out)
    lines = source.splitlines(keepends=True)
    (edit,) = finding["fix"]["edits"]
    row = edit["location"]["row"] - 1
    line = lines[row]
    start, end = edit["location"]["column"] - 1, edit["end_location"]["column"] - 1
    lines[row] = line[:start] + edit["content"] + line[end:]
    run_devlint("check", tmp_path, "--fix", "--no-cache")
    assert (tmp_path / "m.py").read_text() == "".join(lines) == "import torch\n\ndef f(x, device):\n    return x.to(device)\n"
