"""Cost grows linearly with the findings of one file (issue 25): four times the lines, about
four times the work, whether the findings are module-level code or inside functions (which
plans a threaded fix per function)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from devlint import catalog
from devlint.check import lint as linter
from devlint.check import thread
from devlint.check.discover import discover
from devlint.check.suppress import Suppression
from devlint.config import Settings

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import scale  # noqa: E402  (the generator the benchmark uses)

ALL = frozenset(catalog.load())


def _check_seconds(root: Path, text: str) -> tuple[float, int]:
    (root / "generated.py").write_text(text)
    settings = Settings(root=root)
    files, _ = discover([root], settings)
    start = time.process_time()
    result = linter.lint(files, Suppression(settings, ALL))
    findings, _ = thread.project_findings(result)
    return time.process_time() - start, len(findings)


@pytest.mark.parametrize("generate", [scale._module, scale._functions], ids=["module", "functions"])
def test_four_times_the_findings_cost_about_four_times_as_much(tmp_path, generate):
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    _check_seconds(tmp_path / "small", generate(200))  # imports and caches warm
    small, small_findings = _check_seconds(tmp_path / "small", generate(1500))
    large, large_findings = _check_seconds(tmp_path / "large", generate(6000))
    assert large_findings >= 3.9 * small_findings
    # Linear is 4; quadratic was 12 to 16 at these sizes. CPU time, so other load matters little.
    assert large / small < 7, f"{small:.2f}s for 1,500 lines, {large:.2f}s for 6,000"


def test_scale_benchmark_runs_quick(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scale.py"), "--quick", "--dimension", "files", "--max-size", "10"],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "files: slope" in done.stdout and "peak" in done.stdout


def _materialized(root: Path, text: str):
    from devlint.check.fix import materialize

    (root / "generated.py").write_text(text)
    (root / "caller.py").write_text("from generated import f1, f2\n\n\ndef run(n):\n    return f1(n), f2(n)\n")
    settings = Settings(root=root)
    files, _ = discover([root], settings)
    result = linter.lint(files, Suppression(settings, ALL))
    findings, _ = thread.project_findings(result)
    start = time.process_time()
    return materialize(findings, result.works), time.process_time() - start, result


def test_json_fix_edits_are_those_of_the_whole_files_rewritten(tmp_path):
    """JSON/SARIF carry each finding's plan out on its own: the edits, found from the statements
    a plan changes, are the diff of the whole files as libcst rewrites them."""
    from devlint.codemod import rewrite, text_edits

    found, _, result = _materialized(tmp_path, scale._functions(120))
    texts = {w.file.display: w.text for w in result.works}
    threaded = [f for f in found if f.fix.threading is not None and f.fix.edits]
    assert len({f.fix.threading.plan for f in threaded}) >= 10
    assert any(e.filename and e.filename.endswith("caller.py") for f in threaded for e in f.fix.edits)
    for finding in threaded:
        by_file = {}
        for op in finding.fix.threading.plan:
            by_file.setdefault(op.span.filename, []).append(op)
        whole = [
            e for name, ops in sorted(by_file.items())
            for e in text_edits(texts[name], rewrite(texts[name], ops, name), None if name == finding.filename else name)
        ]
        assert list(finding.fix.edits) == whole


def test_json_fix_edits_cost_linear_in_the_plans_of_a_file(tmp_path):
    """Four times the functions (and plans) in one module: about four times the work of
    materialising their edits, not sixteen (each plan used to visit and print the module)."""
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    _materialized(tmp_path / "small", scale._functions(60))  # imports warm
    _, small, _ = _materialized(tmp_path / "small", scale._functions(200))
    _, large, _ = _materialized(tmp_path / "large", scale._functions(800))
    assert large / small < 7, f"{small:.2f}s for 200 lines, {large:.2f}s for 800"
