"""Blame across threads and pools: a leak in a worker thread of a library is blamed on the
user line that handed the work over, with the library's frames as its origin."""

import sys
import textwrap
import threading

import pytest
import torch
from rt_helpers import next_line

from devlint.runtime.tracer import Tracer

LIBRARY = '''
import concurrent.futures
import threading

import torch


def _materialise(name):
    try:
        return torch.ones(2).to("cuda:0")  # line 10: an explicit GPU0, as device_map="auto" gives
    except (RuntimeError, AssertionError):  # a CPU build refuses once devlint has judged it
        return None


def _on_current_device():
    return torch.ones(2).cuda()  # line 16: a new thread's current device is 0


def load(names, how="submit"):
    """Weight loading in a pool, the way transformers 5 does it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        if how == "map":
            futures = [pool.submit(lambda: list(pool.map(_materialise, names)))]
        else:
            futures = [pool.submit(_materialise, name) for name in names]
        for future in futures:
            future.result()


def prefetch():
    errors = []

    def work():
        try:
            _on_current_device()
        except (RuntimeError, AssertionError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
'''


@pytest.fixture
def library(tmp_path, monkeypatch):
    """`poolpkg`, installed where devlint treats it as library code (a site-packages directory)."""
    site = tmp_path / "site-packages"
    (site / "poolpkg").mkdir(parents=True)
    (site / "poolpkg" / "__init__.py").write_text(textwrap.dedent(LIBRARY))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "poolpkg", raising=False)
    import poolpkg

    return poolpkg


@pytest.mark.parametrize("how", ["submit", "map"])
def test_a_leak_in_a_library_pool_is_blamed_on_the_users_calling_line(library, how):
    with Tracer("cuda:1") as tracer:
        line = next_line()
        library.load(["a.weight", "b.weight", "c.weight"], how=how)
    [leak] = tracer.leaks()
    assert (leak.code, leak.filename, leak.line, leak.device, leak.count) == ("DL008", __file__, line, "cuda:0", 3)
    assert leak.origin.startswith(library.__file__ + ":10 in _materialise")
    assert str(leak.stack[0]).startswith(library.__file__ + ":10")


def test_a_new_thread_of_a_library_on_device_0_is_dl102_at_the_users_line(library, attempt):
    with Tracer("cuda:1") as tracer:
        attempt(torch.cuda.set_device, 1)  # the main thread selects the allowed GPU; the new thread does not
        line = next_line()
        library.prefetch()
    [leak] = tracer.leaks()
    assert (leak.code, leak.filename, leak.line) == ("DL102", __file__, line)
    assert leak.origin.startswith(library.__file__ + ":16 in _on_current_device")


def test_the_users_own_function_in_a_pool_is_blamed_where_it_is(attempt):
    import concurrent.futures

    def work():
        return attempt(lambda: torch.ones(2).to("cuda:0"))

    line = work.__code__.co_firstlineno + 1
    with Tracer("cuda:1") as tracer:
        with concurrent.futures.ThreadPoolExecutor() as pool:
            pool.submit(work).result()
    [leak] = tracer.leaks()
    assert (leak.code, leak.line) == ("DL008", line)


def test_pools_and_threads_are_restored_after_tracing():
    import concurrent.futures

    submit, start = concurrent.futures.ThreadPoolExecutor.submit, threading.Thread.start
    with Tracer("cuda:1"):
        assert concurrent.futures.ThreadPoolExecutor.submit is not submit
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
    assert concurrent.futures.ThreadPoolExecutor.submit is submit and threading.Thread.start is start
    assert "run" not in vars(thread)  # the per-thread wrapper is gone once the thread ran
