"""benchmarks/real_code.py scores devlint against hand labels: run it on a tiny labelled repository."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "real_code.py"

APP = textwrap.dedent(
    """\
    import torch


    def build(device):
        model = torch.nn.Sequential(
            torch.nn.Linear(2, 2),
        ).cuda()
        weights = torch.load("weights.pt")
        scratch = torch.zeros(2, device=device)
        torch.cuda.synchronize()
        return model, weights, scratch, make_helper()


    def other():
        return torch.ones(3).cuda()
    """
)

# Line 7 is the `).cuda()` line of a statement that starts on line 5: matched by statement.
LABELS = textwrap.dedent(
    """\
    path,line,label,class,why
    app.py,7,leak,cuda-no-index,model moved with .cuda()
    app.py,8,leak,load,GPU-saved weights loaded without map_location
    app.py,9,ok,correct,zeros on the caller's device
    app.py,10,ok,current-device-call,"labelled ok here, so a finding on it is a false positive"
    app.py,11,leak,library-default,"make_helper defaults to cuda, which devlint cannot see"
    """
)


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def _corpus(tmp_path):
    checkout = tmp_path / "checkouts" / "tiny"
    (checkout / "tests").mkdir(parents=True)
    (checkout / "app.py").write_text(APP)
    (checkout / "tests" / "test_app.py").write_text("import torch\nx = torch.ones(1).cuda()\n")
    (checkout / "setup.py").write_text("import torch\ntorch.ones(1).cuda()\n")
    (checkout / "broken.py").write_text("def broken(:\n")
    # The repository's own configuration must not change the result.
    (checkout / "pyproject.toml").write_text('[tool.devlint]\nignore = ["DL"]\n')
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "someone__tiny.csv").write_text(LABELS)
    (labels / "someone__other.csv").write_text(LABELS)
    repos = tmp_path / "repos.txt"
    repos.write_text("# corpus\nsomeone/tiny@0123456789abcdef\nsomeone/other@fedcba9876543210\n")
    return tmp_path / "checkouts", labels, repos


def test_counts_found_missed_and_false_positives(tmp_path):
    checkouts, labels, repos = _corpus(tmp_path)
    done = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "tiny", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (tiny,) = report["repositories"]
    assert (tiny["leaks"], tiny["found"], tiny["missed"]) == (3, 2, 1)
    assert [m["line"] for m in tiny["misses"]] == [11]
    # The synchronize() labelled ok, and the unlabelled .cuda() in other(); nothing from tests/ or setup.py.
    assert (tiny["false_positives"], tiny["unlabelled"]) == (2, 1)
    assert [s["label"]["line"] if s["label"] else None for s in tiny["false_positive_statements"]] == [10, None]
    assert [f["path"] for f in tiny["unparsable"]] == ["broken.py"]
    assert tiny["recall"] == 2 / 3 and tiny["precision"] == 2 / 4
    assert report["overall"]["found"] == 2
    # Not a git checkout of the listed commit: a warning, not a failure.
    assert "labels are for 0123456789abcdef" in done.stderr


def test_text_report_lists_misses_and_false_positives(tmp_path):
    checkouts, labels, repos = _corpus(tmp_path)
    done = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "someone/tiny")
    assert done.returncode == 0, done.stderr
    assert "tiny/app.py:11 library-default make_helper defaults to cuda" in done.stdout
    assert "| unlabelled" in done.stdout
    assert "tiny/app.py:10 DL006" in done.stdout


def test_train_and_test_splits_are_reported_apart(tmp_path):
    checkouts, labels, repos = _corpus(tmp_path)
    repos.write_text("someone/tiny@0123456789abcdef\nsomeone/other@fedcba9876543210 test\n")
    (checkouts / "other").mkdir()
    (checkouts / "other" / "app.py").write_text("import torch\n" * 6 + "model = torch.nn.Linear(2, 2).cuda()\n")
    report = json.loads(_run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--json").stdout)
    assert {r["repository"]: r["split"] for r in report["repositories"]} == {"someone/tiny": "train", "someone/other": "test"}
    tiny = next(r for r in report["repositories"] if r["repository"] == "someone/tiny")
    # The train split's figures are those of its one repository, not mixed with the test split's.
    assert (report["splits"]["train"]["leaks"], report["splits"]["train"]["found"]) == (tiny["leaks"], tiny["found"])
    assert report["splits"]["train"]["leaks"] + report["splits"]["test"]["leaks"] == report["overall"]["leaks"]
    text = _run(checkouts, "--labels-dir", labels, "--repos-file", repos).stdout
    assert "train overall" in text and "test overall" in text and "all overall" in text
    only_test = json.loads(_run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--split", "test", "--json").stdout)
    assert [r["repository"] for r in only_test["repositories"]] == ["someone/other"]


def test_the_test_split_stays_blind_unless_its_details_are_asked_for(tmp_path):
    checkouts, labels, repos = _corpus(tmp_path)
    repos.write_text("someone/tiny@0123456789abcdef\nsomeone/other@fedcba9876543210 test\n")
    (checkouts / "other").mkdir()
    (checkouts / "other" / "app.py").write_text(APP)
    text = _run(checkouts, "--labels-dir", labels, "--repos-file", repos).stdout
    # The train repository's miss is listed, the test repository's same miss is not.
    assert "tiny/app.py:11 library-default" in text and "other/app.py" not in text
    assert "not shown" in text
    report = json.loads(_run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--json").stdout)
    other = next(r for r in report["repositories"] if r["repository"] == "someone/other")
    assert "misses" not in other and "false_positive_statements" not in other and other["missed"] == 1
    shown = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--show-test-details").stdout
    assert "other/app.py:11 library-default" in shown


def test_bad_arguments_exit_2_in_one_line(tmp_path):
    checkouts, labels, repos = _corpus(tmp_path)
    bad_split = tmp_path / "bad.txt"
    bad_split.write_text("someone/tiny@0123456789abcdef validation\n")
    for args in (
        [tmp_path / "nowhere"],
        [checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "unknown"],
        [checkouts, "--labels-dir", labels, "--repos-file", bad_split],
    ):
        done = _run(*args)
        assert done.returncode == 2
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1


def _notebook(*cells):
    return json.dumps({
        "cells": [{"cell_type": kind, "metadata": {}, "source": text} for kind, text in cells],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    })


def test_notebook_findings_match_labels_by_code_cell_and_row(tmp_path):
    checkout = tmp_path / "checkouts" / "nb"
    checkout.mkdir(parents=True)
    (checkout / "demo.ipynb").write_text(_notebook(
        ("code", "import torch\n"),
        ("markdown", "# the model\n"),
        ("code", "model = torch.nn.Linear(2, 2)\nmodel = model.cuda()\nx = torch.load('w.pt')\n"),
    ))
    labels = tmp_path / "labels"
    labels.mkdir()
    # Row 2 of the second code cell (the markdown cell is not counted), as devlint's JSON gives it.
    (labels / "someone__nb.csv").write_text(
        "path,line,label,class,why\n"
        "demo.ipynb,cell2:2,leak,cuda-no-index,model moved with .cuda()\n"
        "demo.ipynb,cell2:3,ok,load,labelled ok here: a finding on it is a false positive\n"
    )
    repos = tmp_path / "repos.txt"
    repos.write_text("someone/nb@0123456789abcdef\n")
    done = _run(tmp_path / "checkouts", "--labels-dir", labels, "--repos-file", repos, "--json")
    assert done.returncode == 0, done.stderr
    (nb,) = json.loads(done.stdout)["repositories"]
    assert (nb["leaks"], nb["found"], nb["false_positives"], nb["unlabelled"]) == (1, 1, 1, 0)
    (fp,) = nb["false_positive_statements"]
    assert (fp["label"]["cell"], fp["label"]["line"]) == (2, 3)
    assert [(f["cell"], f["line"], f["code"]) for f in fp["findings"]] == [(2, 3, "DL005")]
    text = _run(tmp_path / "checkouts", "--labels-dir", labels, "--repos-file", repos).stdout
    assert "nb/demo.ipynb:cell2:3 DL005" in text


def test_a_notebook_label_needs_a_cell(tmp_path):
    checkouts, labels, repos = _corpus(tmp_path)
    (labels / "someone__tiny.csv").write_text(LABELS + "demo.ipynb,4,leak,x,a notebook line without its cell\n")
    done = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "tiny")
    assert done.returncode == 2 and "cellN:ROW" in done.stderr


def test_a_symlinked_file_is_scored_once_at_the_file_it_links_to(tmp_path):
    """devlint checks a file once, under its real path: labels written under a link's path too
    (CosyVoice's runtime/triton_trtllm/token2wav_dit.py) count once, where it reports them."""
    checkouts, labels, repos = _corpus(tmp_path)
    tiny = checkouts / "tiny"
    (tiny / "copy.py").symlink_to("app.py")
    linked = LABELS + "".join(f"copy.py,{line}\n" for line in LABELS.splitlines()[1:] for line in [line.split(",", 1)[1]])
    (labels / "someone__tiny.csv").write_text(linked)
    done = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "tiny", "--json")
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["repositories"][0]
    assert (row["leaks"], row["found"]) == (3, 2)
    assert any("symlinked files counted once" in w for w in row["warnings"])


def test_paths_a_labelling_left_out_are_not_scored(tmp_path):
    checkouts, labels, repos = _corpus(tmp_path)
    vendored = checkouts / "tiny" / "third_party" / "lib"
    vendored.mkdir(parents=True)
    (vendored / "copy.py").write_text("import torch\nx = torch.ones(1).cuda()\n")
    done = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "tiny", "--json")
    (tiny,) = json.loads(done.stdout)["repositories"]
    assert tiny["unlabelled"] == 2  # other()'s .cuda(), and the vendored copy's
    (labels / "someone__tiny.scope").write_text("# the vendored copy was not labelled\nskip third_party/*\n")
    done = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "tiny", "--json")
    assert done.returncode == 0, done.stderr
    (tiny,) = json.loads(done.stdout)["repositories"]
    assert (tiny["false_positives"], tiny["unlabelled"], tiny["found"]) == (2, 1, 2)
    (labels / "someone__tiny.scope").write_text("only third_party/*\n")
    (tiny,) = json.loads(_run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "tiny", "--json").stdout)["repositories"]
    assert (tiny["found"], tiny["false_positives"]) == (0, 1)
    # the labels of the paths it leaves out (a vendored copy of a train repository) are not scored
    assert tiny["leaks"] == 0 and any("paths its scope leaves out" in w for w in tiny["warnings"])
    (labels / "someone__tiny.scope").write_text("ignore third_party/*\n")
    done = _run(checkouts, "--labels-dir", labels, "--repos-file", repos, "--repo", "tiny")
    assert done.returncode == 2 and "expected `skip GLOB` or `only GLOB`" in done.stderr
