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


def test_fixing_the_hf_pipeline_leaves_only_its_launch_step(run_devlint, tmp_path):
    """`--fix --unsafe-fixes` on a copy of the generation service: every leak is fixed with the
    service's own device, except the one step no edit can make (how the fine-tuning script is
    started: DL023), and a second run changes nothing."""
    import shutil

    project = tmp_path / "hf_pipeline"
    shutil.copytree(FIXTURES / "hf_pipeline", project)
    code, out, _ = run_devlint("check", ".", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
    assert code == 1, out
    before = {p: p.read_bytes() for p in project.rglob("*.py")}
    code, out, _ = run_devlint("check", ".", "--output-format", "json", "--no-cache", cwd=tmp_path)
    left = [(os.path.relpath(f["filename"], tmp_path), f["code"]) for f in json.loads(out)]
    assert left == [("hf_pipeline/finetune.py", "DL023")]
    text = (project / "text.py").read_text()
    assert 'device_map={"": device}' in text and "torch_device=str(device)" in text and "device=device)" in text
    assert '"-gpu", str(gpu_id)' in (project / "encode.py").read_text()
    assert "with torch.cuda.device(image.device):" in (project / "ops" / "soften.py").read_text()
    run_devlint("check", ".", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
    assert {p: p.read_bytes() for p in project.rglob("*.py")} == before
