"""The real pre-commit, with this project as the hook repository."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}
LEAK = "import torch\n\n\ndef load(path):\n    return torch.load(path)\n"
FIXED = "import torch\n\n\ndef load(path):\n    return torch.load(path, map_location='cpu')\n"


def _git(cwd, *args, check=True):
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory):
    """A git repository holding this project's working tree as it is now (like `pre-commit try-repo`)."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True)
    names = [n for n in listed.stdout.decode().split("\0") if n] if listed.returncode == 0 else None
    if names is None:
        shutil.copytree(ROOT, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git", ".*venv*", "__pycache__"))
    else:
        for name in names:
            source = ROOT / name
            if source.is_file():
                (repo / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "snapshot")
    sha = _git(repo, "rev-parse", "HEAD").stdout.strip()
    return repo, sha


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory):
    return tmp_path_factory.mktemp("pre-commit-home")


# What pip says when it cannot reach a package index.
_OFFLINE = (
    "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "Network is unreachable", "Connection refused", "ConnectTimeout",
    "Max retries exceeded", "No matching distribution found", "Could not find a version that satisfies",
)


@pytest.fixture(scope="session", autouse=True)
def hook_environment(hook_repo, pre_commit_home, tmp_path_factory):
    """The hook's environment, installed once for every test here. pre-commit builds it with
    pip from the package index: where none is reachable (an offline GPU cluster) these tests
    skip, as the GPU tests skip without GPUs; any other failure fails them."""
    project = _project(tmp_path_factory.mktemp("install"), hook_repo, pre_commit_home)
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(pre_commit_home), "PIP_RETRIES": "1"}
    result = subprocess.run([sys.executable, "-m", "pre_commit", "install-hooks"], cwd=project, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        log = Path(pre_commit_home) / "pre-commit.log"
        said = result.stdout + result.stderr + (log.read_text(errors="replace") if log.is_file() else "")
        if any(marker in said for marker in _OFFLINE):
            pytest.skip("no package index reachable: pre-commit cannot install the hook environment")
        pytest.fail(f"pre-commit could not install the hook environment:\n{said[-3000:]}")


def _project(tmp_path, hook_repo, pre_commit_home, hook="devlint"):
    repo, sha = hook_repo
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {repo}\n  rev: {sha}\n  hooks:\n  - id: {hook}\n"
    )
    _git(project, "add", ".pre-commit-config.yaml")
    _git(project, "commit", "-q", "-m", "config", "--no-verify")
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(pre_commit_home)}
    subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=project, env=env, check=True, capture_output=True)
    return project


def _commit(project, pre_commit_home, *files):
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(pre_commit_home)}
    subprocess.run(["git", "add", *files], cwd=project, env=env, check=True)
    return subprocess.run(["git", "commit", "-m", "change"], cwd=project, env=env, capture_output=True, text=True)


def test_leaking_file_blocks_the_commit_and_the_fixed_file_passes(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path, hook_repo, pre_commit_home)
    (project / "model.py").write_text(LEAK)
    result = _commit(project, pre_commit_home, "model.py")
    assert result.returncode != 0
    assert "DL005" in result.stdout + result.stderr
    (project / "model.py").write_text(FIXED)
    result = _commit(project, pre_commit_home, "model.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_commit_without_python_files_passes(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path, hook_repo, pre_commit_home)
    (project / "README.md").write_text("# notes\n")
    result = _commit(project, pre_commit_home, "README.md")
    assert result.returncode == 0, result.stdout + result.stderr


def test_files_excluded_in_config_are_skipped(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path, hook_repo, pre_commit_home)
    (project / "pyproject.toml").write_text('[tool.devlint]\nextend-exclude = ["vendored"]\n')
    (project / "vendored").mkdir()
    (project / "vendored" / "lib.py").write_text(LEAK)
    result = _commit(project, pre_commit_home, "pyproject.toml", "vendored/lib.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_fix_hook_fixes_then_the_commit_passes(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path, hook_repo, pre_commit_home, hook="devlint-fix")
    (project / "model.py").write_text("import torch\n\n\ndef run(x, device):\n    return x.cuda()\n")
    result = _commit(project, pre_commit_home, "model.py")
    assert result.returncode != 0  # pre-commit fails a hook that modified files
    assert (project / "model.py").read_text().endswith("return x.to(device)\n")
    result = _commit(project, pre_commit_home, "model.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hook_environment_has_no_torch(tmp_path, hook_repo, pre_commit_home):
    _project(tmp_path, hook_repo, pre_commit_home)
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(pre_commit_home)}
    project = tmp_path / "project"
    subprocess.run([sys.executable, "-m", "pre_commit", "install-hooks"], cwd=project, env=env, check=True, capture_output=True)
    site_dirs = list(Path(pre_commit_home).glob("repo*/py_env-*/lib/python*/site-packages"))
    assert site_dirs, "pre-commit built no Python environment"
    installed = {p.name.split("-")[0].lower() for d in site_dirs for p in d.iterdir()}
    assert "devlint" in installed and "click" in installed
    assert "torch" not in installed
