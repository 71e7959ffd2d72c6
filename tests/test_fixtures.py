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


def test_a_rule_selected_alone_finds_what_it_finds_in_a_full_run(run_devlint):
    """`--select CODE` must not lose the project knowledge the full run has (the index):
    for every rule planted in the fixtures, all its lines, and no others than those where
    the full run reports a more specific rule instead (DL011 over DL001 on `zeros().cuda()`)."""
    expected = (FIXTURES / "expected_findings.txt").read_text().splitlines()
    taken = {line.rsplit(" ", 1)[0] for line in expected}
    for code in sorted({line.rsplit(" ", 1)[1] for line in expected}):
        _, out, _ = run_devlint("check", ".", "--select", code, "--output-format", "json", "--no-cache", cwd=FIXTURES)
        found = [f"{os.path.relpath(f['filename'], FIXTURES)}:{f['location']['row']}:{f['location']['column']}: {f['code']}" for f in json.loads(out)]
        own = [line for line in expected if line.endswith(" " + code)]
        assert [line for line in found if line in own] == own, code
        assert all(line.rsplit(" ", 1)[0] in taken for line in found if line not in own), code


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
