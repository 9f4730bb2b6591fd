"""Clocks of a memory store: the system's time, or a virtual one moved by tests."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, TypeAlias

from ...durations import to_ms, to_seconds

if TYPE_CHECKING:
    from .stores import Store


class SystemClock:
    """The real time (``time.time()``); the default."""

    manual = False

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        return int(time.time() * 1000)

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def __repr__(self) -> str:
        return "<SystemClock>"


class ManualClock:
    """A store's virtual time: starts at the real time, moves only by :meth:`advance`."""

    manual = True

    def __init__(self, store: Store) -> None:
        self._store = store
        self._ms = int(time.time() * 1000)

    def __repr__(self) -> str:
        return f"<ManualClock {self._ms / 1000:.3f} of store {self._store.name!r}>"

    def now_ms(self) -> int:
        """The store's time, milliseconds since the epoch."""
        return self._ms

    def now(self) -> float:
        """The store's time, seconds since the epoch."""
        return self._ms / 1000

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward; fire due delays, lock expiries and stalled checks on the way;
        wake waiting workers. Safe from any thread; returns at once."""
        delta = to_ms(to_seconds(seconds, "advance"))
        store = self._store
        with store.lock:
            target = self._ms + delta
            queues = list(store.queues.values())
            for q in queues:
                # An expired guard means a check runs as soon as a worker asks: now.
                q.stalled_check_until = max(q.stalled_check_until, self._ms)
            while True:
                step = target
                for q in queues:
                    first = q.delayed.first()
                    if first is not None:
                        step = min(step, max(int(first[0]) // 4096, self._ms))
                    check = q.next_check(self._ms)
                    if check is not None:
                        step = min(step, check)
                self._ms = step
                for q in queues:
                    q.promote(step, len(q.delayed))
                    if q.checker is not None and q.next_check(step) == step:
                        q.check_stalled(q.checker[0], step, q.checker[1])
                if step >= target:
                    break
            for q in queues:
                q.wake_workers()


Clock: TypeAlias = SystemClock | ManualClock
