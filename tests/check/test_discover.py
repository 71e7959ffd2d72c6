"""Which files `devlint check` looks at."""

import shutil
import subprocess
from pathlib import Path

import pytest

from devlint.config import Settings
from devlint.check.discover import discover, module_name

LEAK = "import torch\ny = torch.load('w.pth')\n"


def _tree(root: Path, paths):
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LEAK)


def _rel(files, root):
    return sorted(f.path.relative_to(root).as_posix() for f in files)


def test_skips_virtualenvs_build_dirs_and_hidden_dirs(tmp_path):
    _tree(tmp_path, ["src/a.py", "venv/lib/b.py", ".venv/c.py", "build/d.py", ".hidden/e.py", "node_modules/x/f.py", "g.txt", "h.pyi"])
    files, missing = discover([tmp_path], Settings(root=tmp_path))
    assert _rel(files, tmp_path) == ["h.pyi", "src/a.py"] and missing == []


def test_exclude_globs_and_explicit_files(tmp_path):
    _tree(tmp_path, ["src/a.py", "src/gen/b.py", "scripts/c.py"])
    settings = Settings(root=tmp_path, extend_exclude=["gen", "scripts/*.py"])
    assert _rel(discover([tmp_path], settings)[0], tmp_path) == ["src/a.py"]
    # a file named on the command line is checked unless --force-exclude
    assert _rel(discover([tmp_path / "scripts/c.py"], settings)[0], tmp_path) == ["scripts/c.py"]
    assert discover([tmp_path / "scripts/c.py"], settings, force_exclude=True)[0] == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_respects_gitignore_in_a_git_work_tree(tmp_path):
    _tree(tmp_path, ["src/a.py", "data/b.py", "src/c_generated.py", "tracked_but_ignored.py"])
    (tmp_path / ".gitignore").write_text("data/\n*_generated.py\ntracked_but_ignored.py\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-f", "tracked_but_ignored.py"], check=True)
    files, _ = discover([tmp_path], Settings(root=tmp_path))
    assert _rel(files, tmp_path) == ["src/a.py", "tracked_but_ignored.py"]
    files, _ = discover([tmp_path], Settings(root=tmp_path, respect_gitignore=False))
    assert _rel(files, tmp_path) == ["data/b.py", "src/a.py", "src/c_generated.py", "tracked_but_ignored.py"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_directory_linked_into_a_git_work_tree_follows_its_gitignore(tmp_path):
    """git finds the repository from the real path (devlint starts git only where it could
    find one): a link from outside the work tree still gets its ignore rules."""
    repo = tmp_path / "repo"
    _tree(repo, ["src/a.py", "src/b_generated.py"])
    (repo / ".gitignore").write_text("*_generated.py\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "src").symlink_to(repo / "src")
    files, _ = discover([outside / "src"], Settings(root=outside))
    assert [f.path.name for f in files] == ["a.py"]
    plain = tmp_path / "plain"  # no repository anywhere above it: every file
    _tree(plain, ["a.py", "b_generated.py"])
    (plain / ".gitignore").write_text("*_generated.py\n")
    assert _rel(discover([plain], Settings(root=plain))[0], plain) == ["a.py", "b_generated.py"]


def test_missing_paths_are_reported(tmp_path):
    files, missing = discover([tmp_path / "nope.py"], Settings(root=tmp_path))
    assert files == [] and missing == [f"{tmp_path / 'nope.py'}: no such file or directory"]


def test_duplicates_and_symlinked_files_are_checked_once(tmp_path):
    _tree(tmp_path, ["a.py"])
    (tmp_path / "link.py").symlink_to(tmp_path / "a.py")
    files, _ = discover([tmp_path, tmp_path / "a.py"], Settings(root=tmp_path))
    assert len(files) == 1


def test_module_names(tmp_path):
    assert module_name(tmp_path / "src/pkg/mod.py", tmp_path) == "src.pkg.mod"
    assert module_name(tmp_path / "pkg/__init__.py", tmp_path) == "pkg"
    assert module_name(tmp_path / "my-scripts/run.py", tmp_path) == "run"
