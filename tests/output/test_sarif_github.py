"""SARIF validates against the SARIF 2.1.0 schema; GitHub output is workflow commands."""

from pathlib import Path
import json

import jsonschema

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())


def test_sarif_output_validates_and_carries_rules_and_fixes(run_devlint):
    code, out, _ = run_devlint("check", ROOT / "fixtures", "--output-format", "sarif", "--no-cache")
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    run = log["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert {"DL001", "DL012", "DL901"} <= set(rules)
    assert "map_location" in rules["DL005"]["help"]["text"]
    results = run["results"]
    assert code == 1 and results
    for result in results:
        assert result["ruleId"] in rules and run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    fixed = [r for r in results if "fixes" in r]
    assert fixed and all(r["fixes"][0]["artifactChanges"][0]["replacements"] for r in fixed)


def test_github_output_is_one_annotation_per_finding(run_devlint, tmp_path):
    (tmp_path / "m.py").write_text("import torch\nx = torch.load('a')  # 100%, really\n")
    code, out, _ = run_devlint("check", tmp_path, "--output-format", "github")
    (line,) = out.splitlines()
    assert line.startswith(f"::error file={tmp_path / 'm.py'},line=2,col=5,endLine=2,endColumn=20,title=DL005::DL005 ")
    assert "%0Afix: " in line  # the suggested fix, escaped onto the same line
