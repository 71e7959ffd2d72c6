"""The check pipeline: parallel == serial, the prefilter drops nothing, the cache is exact."""

from dataclasses import replace
from pathlib import Path
import textwrap


ROOT = Path(__file__).resolve().parents[2]
from devlint import catalog
from devlint.check import lint as linter
from devlint.check.cache import Cache, header_key
from devlint.check.discover import discover
from devlint.check.suppress import Suppression
from devlint.config import Settings

ALL = frozenset(catalog.load())


def _lint(paths, root, jobs=1, cache=None, enabled=ALL):
    settings = Settings(root=root)
    files, _ = discover(paths, settings)
    return linter.lint(files, Suppression(settings, enabled), jobs=jobs, cache=cache)


def _keys(result):
    return [(f.filename, f.location, f.code, f.message) for f in result.findings]


def test_parallel_run_equals_serial_run(monkeypatch):
    monkeypatch.setattr(linter, "_PARALLEL_BYTES", 0)
    fixtures = ROOT / "fixtures"
    assert _keys(_lint([fixtures], fixtures, jobs=2)) == _keys(_lint([fixtures], fixtures, jobs=1))


def _example_tree(tmp_path):
    """Every catalog example and flagged case as a file, beside the fixtures."""
    n = 0
    for rule in catalog.load().values():
        for text in [t for e in rule.examples for t in e.bad.values()] + list(rule.invalid):
            n += 1
            (tmp_path / f"{rule.code.lower()}_{n}.py").write_text(textwrap.dedent(text))
    return tmp_path


def test_prefilter_drops_no_finding(tmp_path, monkeypatch):
    """Neither the file prefilter (any rule's trigger) nor each check's own (its rule's
    triggers) loses a finding on the fixtures or on any catalog example."""
    trees = [ROOT / "fixtures", _example_tree(tmp_path)]
    filtered = [_keys(_lint([t], t)) for t in trees]
    rules = catalog.load()
    everywhere = {code: replace(rule, triggers=("",) if rule.triggers else ()) for code, rule in rules.items()}
    monkeypatch.setattr(catalog, "load", lambda: everywhere)  # "" is in every text
    unfiltered = [_keys(_lint([t], t)) for t in trees]
    assert filtered == unfiltered
    assert all(filtered)


def test_a_check_skips_a_file_without_its_triggers(tmp_path):
    """DL005's check is not run on a file that never says `load`: the per-check prefilter
    is what keeps the walk cheap, and it must not skip an aliased `torch.load`."""
    from devlint.checks import all_checks
    from devlint.static import analyze
    from devlint.static import index as project_index

    dl005 = next(c for c in all_checks() if c.code == "DL005")
    aliased = b"import torch\nfrom torch import load as restore\nweights = restore('w.pth')\n"
    unrelated = b"import torch\nx = torch.ones(2).cuda()\n"
    for data, expected in ((aliased, ["DL005"]), (unrelated, [])):
        parsed = analyze.parse(data, "f.py")
        ctx = analyze.make_context(parsed, "f.py", "f", ALL, project_index.ProjectIndex())
        assert dl005.wanted(ctx) == bool(expected)
        result = analyze.check(data, "f.py", "f", ALL, project_index.ProjectIndex(), [dl005])
        assert [f.code for f in result.findings] == expected


LIB = "def make(x, device='cuda'):\n    return x.to(device)\n"
USER = "from lib import make\n\ndef run(x):\n    return make(x)\n"


def _cached_lint(tmp_path, enabled=ALL):
    cache = Cache(tmp_path, header_key(enabled, Path.cwd()))
    result = _lint([tmp_path], tmp_path, cache=cache, enabled=enabled)
    return result


def test_unchanged_tree_comes_from_the_cache(tmp_path):
    (tmp_path / "lib.py").write_text(LIB)
    (tmp_path / "user.py").write_text(USER)
    cold = _cached_lint(tmp_path)
    warm = _cached_lint(tmp_path)
    assert cold.from_cache == 0 and warm.from_cache == 2
    assert _keys(warm) == _keys(cold) and [f.code for f in warm.findings] == ["DL012"]


def test_warm_run_does_not_search_unchanged_files_again(tmp_path, monkeypatch):
    """Which files mention a trigger is kept with their results: a warm run reads it back
    (searching every file's text for every trigger was a third of a warm run on torch)."""
    (tmp_path / "lib.py").write_text(LIB)
    (tmp_path / "user.py").write_text(USER)
    (tmp_path / "plain.py").write_text("x = 1\n")
    cold = _cached_lint(tmp_path)

    def searched(text, words):
        raise AssertionError("an unchanged file was searched for triggers again")

    monkeypatch.setattr(linter, "_mentions", searched)
    warm = _cached_lint(tmp_path)
    assert warm.from_cache == 3 and _keys(warm) == _keys(cold)


def test_new_trigger_searches_again(tmp_path):
    """A callable the index learns adds a trigger (DL012): a file that mentions only it and
    was parsed, not checked, before is now checked."""
    (tmp_path / "user.py").write_text(USER)
    assert _cached_lint(tmp_path).findings == []
    (tmp_path / "lib.py").write_text(LIB)
    assert [f.code for f in _cached_lint(tmp_path).findings] == ["DL012"]


def test_changed_file_is_rechecked(tmp_path):
    (tmp_path / "user.py").write_text("import torch\nx = torch.load('a')\n")
    assert [f.code for f in _cached_lint(tmp_path).findings] == ["DL005"]
    (tmp_path / "user.py").write_text("import torch\nx = torch.load('a', map_location='cpu')\n")
    result = _cached_lint(tmp_path)
    assert result.findings == [] and result.from_cache == 0


def test_index_change_in_another_file_invalidates_its_callers(tmp_path):
    (tmp_path / "lib.py").write_text(LIB)
    (tmp_path / "user.py").write_text(USER)
    (tmp_path / "other.py").write_text("import torch\nx = torch.load('a')\n")
    _cached_lint(tmp_path)
    (tmp_path / "lib.py").write_text(LIB.replace("'cuda'", "'cpu'"))  # the default no longer leaks
    result = _cached_lint(tmp_path)
    assert [f.code for f in result.findings] == ["DL005"]
    assert result.from_cache == 1  # other.py only: user.py depended on lib.py's definition


def test_selection_change_does_not_reuse_results(tmp_path):
    (tmp_path / "user.py").write_text("import torch\nx = torch.load('a').cuda()\n")
    _cached_lint(tmp_path)
    only = frozenset({"DL005"})
    result = _cached_lint(tmp_path, enabled=only)
    assert result.from_cache == 0 and [f.code for f in result.findings] == ["DL005"]


def test_corrupt_cache_is_ignored(tmp_path):
    (tmp_path / "user.py").write_text("import torch\nx = torch.load('a')\n")
    _cached_lint(tmp_path)
    (tmp_path / ".devlint_cache" / "results-v3.json").write_text("{not json")
    assert [f.code for f in _cached_lint(tmp_path).findings] == ["DL005"]


def test_a_run_from_another_directory_names_files_as_seen_from_there(run_devlint, tmp_path):
    """Messages name other files ("defaults to 'cuda' (lib.py:1)") relative to the working
    directory: a cache written from the project's parent must not lend its names to a run
    from the project itself (`devlint check fixtures`, then the tests, in one checkout)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.devlint]\n")
    (project / "lib.py").write_text(LIB)
    (project / "user.py").write_text(USER)
    _, outside, _ = run_devlint("check", "proj", cwd=tmp_path)
    assert "(proj/lib.py:1)" in outside
    _, inside, _ = run_devlint("check", ".", cwd=project)
    assert inside == run_devlint("check", ".", "--no-cache", cwd=project)[1]
    assert "(lib.py:1)" in inside and "proj/" not in inside


def test_cli_cache_no_cache_and_clean(run_devlint, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.devlint]\n")
    (tmp_path / "m.py").write_text("import torch\nx = torch.load('a')\n")
    run_devlint("check", tmp_path, "--no-cache")
    assert not (tmp_path / ".devlint_cache").exists()
    first = run_devlint("check", tmp_path, "--output-format", "json")
    assert (tmp_path / ".devlint_cache" / "results-v3.json").is_file()
    assert run_devlint("check", tmp_path, "--output-format", "json")[1] == first[1]
    code, out, _ = run_devlint("clean", tmp_path)
    assert code == 0 and "Removed" in out and not (tmp_path / ".devlint_cache").exists()


HELPER = (
    "import torch\nimport torch.distributed as dist\n\n"
    "def sizes(n):\n    if not dist.is_initialized():\n        return [n]\n    return torch.tensor([n], device='cuda')\n"
)
SETUP = "import torch\nimport torch.distributed as dist\n\ndef setup(rank):\n    torch.cuda.set_device(rank)\n    dist.init_process_group('nccl')\n"


def test_distributed_set_up_in_another_file_decides_and_invalidates(tmp_path):
    (tmp_path / "helpers.py").write_text(HELPER)
    (tmp_path / "setup.py").write_text(SETUP)
    assert _cached_lint(tmp_path).findings == []  # 'cuda' under the process group is the rank's GPU
    (tmp_path / "setup.py").write_text(SETUP.replace("    torch.cuda.set_device(rank)\n", ""))
    result = _cached_lint(tmp_path)
    assert [(Path(f.filename).name, f.code) for f in result.findings] == [("helpers.py", "DL002"), ("setup.py", "DL020")]


SELECT = (
    "import os\n\n\ndef select_device(device=''):\n    if device:\n        os.environ['CUDA_VISIBLE_DEVICES'] = device\n"
    "    return 'cuda:0'\n"
)
CREATE = "from helpers import select_device\n\n\ndef create(name, device=None):\n    device = select_device(device)\n    return name, device\n"
SCRIPT = "from create import create\n\nmodel = create('small')\n"


def test_facts_passed_on_across_files_come_back_from_the_cache(tmp_path):
    # create() passes its None on to select_device(): the call in the script relies on it, warm as cold.
    (tmp_path / "helpers.py").write_text(SELECT)
    (tmp_path / "create.py").write_text(CREATE)
    (tmp_path / "script.py").write_text(SCRIPT)
    cold = _cached_lint(tmp_path)
    (tmp_path / "script.py").write_text(SCRIPT + "\n")  # re-check the script against cached facts
    warm = _cached_lint(tmp_path)
    assert [(Path(f.filename).name, f.code) for f in cold.findings] == [("script.py", "DL012")]
    assert [(Path(f.filename).name, f.code) for f in warm.findings] == [("script.py", "DL012")]


def test_a_fact_two_files_give_is_named_alike_cold_and_warm(tmp_path):
    """Two callers pass a type string to one helper; the message names the first. After the
    first caller changes (its facts collected again, the other's read from the cache), a
    warm run must name the same caller as a cold one."""
    (tmp_path / "grid.py").write_text("import torch\n\n\ndef grid(n, type):\n    return torch.arange(n).type(type)\n")
    (tmp_path / "a.py").write_text("from grid import grid\n\n\ndef f(x):\n    return grid(3, x.type())\n")
    (tmp_path / "b.py").write_text("from grid import grid\n\n\ndef g(y):\n    return grid(4, y.type())\n")
    _cached_lint(tmp_path)
    (tmp_path / "a.py").write_text("\n" + (tmp_path / "a.py").read_text())
    warm = _cached_lint(tmp_path)
    cold = _lint([tmp_path], tmp_path)
    assert _keys(warm) == _keys(cold)
    assert any(f"from {tmp_path / 'a.py'}:6" in f.message for f in cold.findings)


def test_every_fact_of_a_file_survives_the_cache():
    # A fact the cache drops changes a warm run's findings: every field must come back.
    import dataclasses

    from devlint.check.cache import facts_from_data, facts_to_data
    from devlint.static import analyze

    text = (
        "import os\nimport torch\nimport torch.distributed as dist\n\n\n"
        "class Base:\n    def __init__(self, device='cuda'):\n        self.net = torch.nn.Linear(2, 2).to(device)\n\n\n"
        "class Child(Base):\n    pass\n\n\n"
        "def setup(rank):\n    torch.cuda.set_device(rank)\n    helper()\n\n\n"
        "def helper():\n    dist.init_process_group('nccl')\n"
    )
    facts = analyze.facts(text.encode(), "mod.py", "mod")
    assert facts.inherits_init and facts.device_setters and facts.setup_calls and facts.process_group_functions
    back = facts_from_data(facts_to_data(facts))
    assert {f.name: getattr(back, f.name) for f in dataclasses.fields(facts)} == {f.name: getattr(facts, f.name) for f in dataclasses.fields(facts)}


def test_an_inherited_constructor_default_is_found_warm_as_cold(tmp_path):
    (tmp_path / "base.py").write_text("import torch\n\n\nclass Base:\n    def __init__(self, device='cuda'):\n        self.net = torch.nn.Linear(2, 2).to(device)\n\n\nclass Child(Base):\n    pass\n")
    (tmp_path / "script.py").write_text("from base import Child\n\nmodel = Child()\n")
    cold = _cached_lint(tmp_path)
    (tmp_path / "script.py").write_text("from base import Child\n\n\nmodel = Child()\n")
    warm = _cached_lint(tmp_path)
    assert [(Path(f.filename).name, f.code) for f in cold.findings] == [("script.py", "DL012")]
    assert [(Path(f.filename).name, f.code) for f in warm.findings] == [("script.py", "DL012")]


def _record_parse(log: Path, original):
    def parse(data, filename):
        with open(log, "a") as out:  # appended from every worker process
            out.write(filename + "\n")
        return original(data, filename)

    return parse


def test_a_parallel_run_parses_each_file_once(tmp_path, monkeypatch):
    """The workers that parse a file for the index check it with that tree: in parallel,
    as in one process, no file is parsed twice (it was, for every file the index read).
    A worker left idle may take another's file and parse it again, which depends on timing
    (it did, once, on a loaded CI machine): that is turned off here."""
    from devlint.check.workers import Workers
    from devlint.static import analyze

    monkeypatch.setattr(linter, "_PARALLEL_BYTES", 0)
    monkeypatch.setattr(Workers, "STEALS", False)
    fixtures = ROOT / "fixtures"
    serial = _keys(_lint([fixtures], fixtures, jobs=1))
    log = tmp_path / "parsed.txt"
    monkeypatch.setattr(analyze, "parse", _record_parse(log, analyze.parse))
    assert _keys(_lint([fixtures], fixtures, jobs=2)) == serial
    parsed = log.read_text().splitlines()
    assert parsed and len(parsed) == len(set(parsed))


def _fails(item):
    raise ValueError(f"bad item {item}")


def _dies(item):
    import os

    os._exit(3)


def test_a_worker_error_reaches_the_caller_and_a_dead_worker_stops_the_run():
    import pytest

    from devlint.check.workers import Workers

    with Workers(2) as workers:
        with pytest.raises(ValueError, match="bad item"):
            workers.map(_fails, [1, 2, 3], ["a", "b", "c"])
    with Workers(2) as workers:
        with pytest.raises(RuntimeError, match="stopped"):
            workers.map(_dies, [1, 2], ["a", "b"])


def test_a_rule_selected_alone_still_reads_the_project_index(tmp_path):
    """A barrier after the project selected each rank's GPU is quiet in a full run because
    the index says so; `--select DL013` must ask the same index, not report it."""
    (tmp_path / "train.py").write_text(textwrap.dedent("""\
        import os
        import torch
        import torch.distributed as dist

        def main():
            local_rank = int(os.environ["LOCAL_RANK"])
            torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl")
            dist.barrier()
    """))
    full = [f for f in _lint([tmp_path], tmp_path).findings if f.code == "DL013"]
    alone = _lint([tmp_path], tmp_path, enabled=frozenset({"DL013"})).findings
    assert full == [] and alone == []
