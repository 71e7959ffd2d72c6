"""The bundled example project: devlint finds exactly the planted leaks, nothing else."""

from pathlib import Path
import json
import os

ROOT = Path(__file__).resolve().parents[1]

FIXTURES = ROOT / "fixtures"


def test_fixture_findings_match_the_expected_file(run_devlint):
    code, out, _ = run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=FIXTURES)
    assert code == 1
    found = [
        f"{os.path.relpath(f['filename'], FIXTURES)}:{f['location']['row']}:{f['location']['column']}: {f['code']}"
        for f in json.loads(out)
    ]
    expected = (FIXTURES / "expected_findings.txt").read_text().splitlines()
    assert found == expected


def test_every_static_rule_is_planted_in_the_fixtures():
    from devlint import catalog

    planted = {line.rsplit(" ", 1)[1] for line in (FIXTURES / "expected_findings.txt").read_text().splitlines()}
    static = {code for code, rule in catalog.load().items() if rule.scope == "static"}
    assert static <= planted


def test_library_code_in_site_packages_is_not_checked(run_devlint):
    code, out, _ = run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=FIXTURES)
    assert not any("site-packages" in f["filename"] for f in json.loads(out))
