import os

import pytest



@pytest.fixture
def run_devlint():
    """Run the real CLI in-process (click's runner) and return (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from devlint.cli import cli

    def run(*args, cwd=None):
        runner = CliRunner()
        old = os.getcwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        finally:
            os.chdir(old)
        return result.exit_code, result.stdout, result.stderr

    return run


@pytest.fixture(autouse=True)
def _library_cache(tmp_path_factory, monkeypatch):
    """Library summaries go to a fresh directory, never the user's cache (docs/libraries.md)."""
    monkeypatch.setenv("DEVLINT_CACHE_DIR", str(tmp_path_factory.mktemp("devlint-cache")))
