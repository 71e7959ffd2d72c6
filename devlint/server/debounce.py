"""Debounced work per key: the first edit after a pause is checked at once, the edits that
follow while it runs (a burst of keystrokes, a paste being formatted) are gathered into
one more check `delay` after the last of them; a document is never checked twice at once."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable


class Debouncer:
    def __init__(self, delay: float, work: Callable[[str], Awaitable[None]]):
        self.delay = delay
        self._work = work
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._tasks: set[asyncio.Task] = set()

    def poke(self, key: str, delay: float | None = None) -> None:
        """Run the work for `key`: now if it is idle, else once `delay` (default: the debounce
        delay) passed without another poke."""
        idle = key not in self._running and key not in self._timers
        self.cancel(key)
        if delay is None and idle:
            delay = 0.0
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(self.delay if delay is None else delay, self._fire, key)

    def cancel(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        if key in self._running:
            self._again.add(key)
            return
        self._running.add(key)
        task = asyncio.get_running_loop().create_task(self._run(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str) -> None:
        try:
            await self._work(key)
        finally:
            self._running.discard(key)
            if key in self._again:
                self._again.discard(key)
                self._fire(key)

    def stop(self) -> None:
        for key in list(self._timers):
            self.cancel(key)
