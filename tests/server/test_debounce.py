"""The debouncer: the first edit after a pause runs at once, a burst during a run costs one more run."""

import asyncio

import pytest

from devlint.server.debounce import Debouncer

pytestmark = pytest.mark.asyncio


async def test_a_burst_during_a_run_is_gathered_into_one_more_run():
    seen = []
    state = {"text": 0}

    async def work(key):
        seen.append(state["text"])
        await asyncio.sleep(0.05)  # a check that takes longer than the keystrokes' spacing

    debouncer = Debouncer(0.02, work)
    for keystroke in range(1, 31):
        state["text"] = keystroke
        debouncer.poke("doc")
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.3)
    assert seen[0] == 1  # the first keystroke after a pause: at once
    assert seen[-1] == 30  # the last text is always checked
    assert len(seen) <= 8  # 30 keystrokes, a handful of runs


async def test_a_key_never_runs_twice_at_once():
    running, overlaps = set(), []

    async def work(key):
        if key in running:
            overlaps.append(key)
        running.add(key)
        await asyncio.sleep(0.03)
        running.discard(key)

    debouncer = Debouncer(0.0, work)
    for _ in range(5):
        debouncer.poke("a")
        debouncer.poke("b")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert overlaps == []
