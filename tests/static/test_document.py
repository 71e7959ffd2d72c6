"""Jupyter notebooks: findings per cell, `# noqa` in a cell, fixes that touch only changed cells."""

import json

import pytest


def _notebook(*cells, indent=1):
    nb = {
        "cells": [
            {"cell_type": kind, "metadata": {"tags": [f"c{i}"]}, "source": source, **({"outputs": [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}], "execution_count": i} if kind == "code" else {})}
            for i, (kind, source) in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=indent) + "\n"


CELLS = (
    ("markdown", ["# Demo\n"]),
    ("code", ["%matplotlib inline\n", "import torch\n", "device = torch.device('cuda:1')\n"]),
    ("code", ["!nvidia-smi \\\n", "    --query-gpu=name\n", "cd checkpoints\n", "w = torch.load('w.pth')\n", "x = torch.zeros(3).cuda()"]),
    ("code", ["y = torch.load('y.pth')  # noqa: DL005\n", "print(y)"]),
    ("code", "%%bash\necho not python\n"),
)


@pytest.fixture
def notebook(tmp_path):
    path = tmp_path / "demo.ipynb"
    path.write_text(_notebook(*CELLS))
    return path


def test_findings_name_the_cell_and_the_line_in_it(run_devlint, notebook):
    code, out, _ = run_devlint("check", notebook, "--output-format", "json", "--no-cache")
    found = [(f["code"], f["cell"], f["location"]["row"], f["location"]["column"]) for f in json.loads(out)]
    # 2nd code cell, after a shell escape and an automagic; the noqa'd load in cell 3 is suppressed
    assert found == [("DL005", 2, 4, 5), ("DL011", 2, 5, 5)]
    code, out, _ = run_devlint("check", notebook, "--no-cache")
    assert f"{notebook}:cell 2:4:5: DL005" in out


def test_fix_rewrites_only_the_changed_cell(run_devlint, notebook):
    before = json.loads(notebook.read_text())
    code, out, err = run_devlint("check", notebook, "--fix", "--unsafe-fixes", "--no-cache")
    after = json.loads(notebook.read_text())
    assert code == 0, out + err
    assert after["cells"][2]["source"] == [
        "!nvidia-smi \\\n", "    --query-gpu=name\n", "cd checkpoints\n", "w = torch.load('w.pth', map_location=device)\n", "x = torch.zeros(3, device=device)"
    ]
    for i in (0, 1, 3, 4):
        assert after["cells"][i] == before["cells"][i]
    assert after["cells"][2]["outputs"] == before["cells"][2]["outputs"]
    assert after["metadata"] == before["metadata"]
    assert notebook.read_text().startswith('{\n "cells"')  # the notebook's one-space indent is kept
    assert run_devlint("check", notebook, "--fix", "--unsafe-fixes", "--no-cache")[0] == 0


def test_a_broken_notebook_is_reported_not_fatal(run_devlint, tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json")
    (tmp_path / "syntax.ipynb").write_text(_notebook(("code", ["import torch\n", "def f(:\n"])))
    code, out, err = run_devlint("check", tmp_path, "--output-format", "json", "--no-cache")
    found = {f["filename"].rsplit("/", 1)[1]: f for f in json.loads(out)}
    assert found["bad.ipynb"]["code"] == "DL901" and "not a Jupyter notebook" in found["bad.ipynb"]["message"]
    assert found["syntax.ipynb"]["cell"] == 1 and found["syntax.ipynb"]["location"]["row"] == 2
