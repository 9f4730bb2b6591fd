"""A coroutine waiting for a change that a watcher thread sees (the SQLite file watcher,
the PostgreSQL LISTEN thread): the thread wakes it on its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class Waiter:
    """One waiting coroutine: ``seen`` is the change counter it last saw, ``tag`` what it
    waits on where one watcher serves several (a PostgreSQL schema)."""

    __slots__ = ("future", "loop", "seen", "tag")

    def __init__(self, seen: int, tag: str = "") -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.seen = seen
        self.tag = tag

    def wake(self) -> None:
        """Resolve the future from any thread."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)
