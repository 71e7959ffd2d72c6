"""benchmarks/output_snapshot.py holds speed work to byte-identical output: it must see a
change and must not see one where there is none."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "output_snapshot.py"


def _snapshot(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False)


def test_same_code_same_output_and_an_edit_is_named(tmp_path):
    tree = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", tree)
    recorded = _snapshot("record", tmp_path / "snap", tree, "--formats", "text,json")
    assert recorded.returncode == 0, recorded.stderr
    same = _snapshot("compare", tmp_path / "snap", tree, "--formats", "text,json")
    assert same.returncode == 0 and "2 of 2 outputs identical" in same.stdout
    app = tree / "talking_head" / "app.py"
    app.write_text(app.read_text() + "\nimport torch\nextra = torch.zeros(1).cuda()\n")
    changed = _snapshot("compare", tmp_path / "snap", tree, "--formats", "text,json")
    assert changed.returncode == 1
    assert "fixtures.text.json: stdout differs" in changed.stdout and "fixtures.json.json: stdout differs" in changed.stdout
    assert "+talking_head/app.py:58:9: DL011" in changed.stdout  # the first differing lines are shown
