"""dockyard as a benchmark peer: enqueue, fill, work and latency roles (see common.py).

Settings: ``Worker(queue, handler, url=..., concurrency=100)``, defaults otherwise; the
event loop is asyncio's own unless ``"loop": "uvloop"`` is given (what ``dockyard worker``
runs on when uvloop is installed). ``"sync": true`` makes the handler a plain ``def`` (run
in the worker's threads), whose ``sleep_ms`` is blocking (``time.sleep``). ``"plain": true``
hides uvloop and orjson, as on a platform where neither has wheels.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine
from typing import Any

from common import Counter, args, emit, now_ms, quiet_logging

A = args()
if A.get("plain"):  # as if not installed: dockyard falls back to json and asyncio's loop
    sys.modules["orjson"] = None  # type: ignore[assignment]
    sys.modules["uvloop"] = None  # type: ignore[assignment]

from dockyard import Job, Queue, Worker  # noqa: E402

QUEUE = "bench"


async def enqueue(url: str, n: int, bulk: bool) -> None:
    async with Queue(QUEUE, url=url) as queue:
        await queue.get_job_counts("waiting")  # connected before the clock starts
        started = time.perf_counter()
        if bulk:
            for i in range(0, n, 1000):
                await queue.add_bulk([("noop", {"i": j}) for j in range(i, min(i + 1000, n))])
        else:
            for i in range(n):
                await queue.add("noop", {"i": i})
        emit(seconds=time.perf_counter() - started)


async def work(url: str, concurrency: int, sleep_ms: float) -> None:
    if sleep_ms < 0:  # latency: the job's return value is its start time, no extra command

        async def handler(job: Job) -> Any:
            return now_ms()

    elif A.get("sync"):
        counter = Counter(url)
        pause = sleep_ms / 1000

        def handler(job: Job) -> Any:  # type: ignore[misc]
            counter.started()
            if pause:
                time.sleep(pause)
            counter.done()
            return None

    else:
        counter = Counter(url)
        pause = sleep_ms / 1000

        async def handler(job: Job) -> Any:
            counter.started()
            if pause:
                await asyncio.sleep(pause)
            counter.done()
            return None

    async with Worker(QUEUE, handler, url=url, concurrency=concurrency):
        emit(ready=True)
        await asyncio.Event().wait()


async def latency(url: str, n: int, warmup: int) -> None:
    start: list[float] = []
    done: list[float] = []
    async with Queue(QUEUE, url=url) as queue:
        for i in range(warmup + n):
            before = now_ms()
            job = await queue.add("noop", {"i": i})
            began: Any = await job.wait_until_finished(timeout=10)
            after = now_ms()
            if i >= warmup:
                start.append(float(began) - before)
                done.append(after - before)
    emit(start=start, done=done)


def run(coro: Coroutine[Any, Any, None]) -> None:
    if A.get("loop", "asyncio") == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - the bench venv installs it
            asyncio.run(coro)
            return
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    else:
        asyncio.run(coro)


def main() -> None:
    quiet_logging()
    role = A["role"]
    url = A["redis"]
    if role in ("enqueue", "fill"):
        run(enqueue(url, A["n"], A.get("bulk", role == "fill")))
    elif role == "work":
        run(work(url, A.get("concurrency", 100), A.get("sleep_ms", 0)))
    elif role == "latency":
        run(latency(url, A["n"], A.get("warmup", 10)))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
