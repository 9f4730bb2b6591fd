"""What the PostgreSQL peers share: an in-process completion count that ends the run.

Workload P (bench/pg_workload.py) runs each system's producer and worker as fresh
processes on one private PostgreSQL; no Redis is involved, so a worker counts its own
completions and, after the n-th, prints ``{"first_ms", "last_ms", "jobs"}``: the first
job's start and the last job's end (wall-clock ms, taken in the handler).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from common import args, now_ms, quiet_logging


class Done:
    """Counts handler runs; ``finished`` is set at the n-th."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        self.finished = asyncio.Event()

    def started(self) -> None:
        if self.first is None:
            self.first = now_ms()

    def ended(self) -> None:
        self.count += 1
        self.last = now_ms()
        if self.count >= self.n:
            self.finished.set()

    def result(self) -> dict[str, float]:
        return {"first_ms": self.first or 0.0, "last_ms": self.last, "jobs": self.count}


def run_role(
    enqueue: Callable[[str, int], Awaitable[None]],
    work: Callable[[str, int, int], Awaitable[None]],
) -> None:
    """A peer's entry point: the role the command line names (bench/peers/common.py)."""
    quiet_logging()
    a = args()
    if a["role"] == "enqueue":
        asyncio.run(enqueue(a["url"], a["n"]))
    else:
        asyncio.run(work(a["url"], a["n"], a["concurrency"]))
