"""dockyard as a benchmark peer: enqueue, fill, work and latency roles."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from common import Counter, args, emit, now_ms

from dockyard import Job, Queue, Worker

QUEUE = "bench"


async def enqueue(url: str, n: int, bulk: bool) -> None:
    async with Queue(QUEUE, url=url) as queue:
        await queue.get_job_counts("waiting")  # connect before timing
        started = time.perf_counter()
        if bulk:
            for i in range(0, n, 1000):
                await queue.add_bulk([("noop", {"i": j}) for j in range(i, min(i + 1000, n))])
        else:
            for i in range(n):
                await queue.add("noop", {"i": i})
        emit(seconds=time.perf_counter() - started)


async def work(url: str, concurrency: int, sleep_ms: float) -> None:
    counter = Counter(url)

    async def noop(job: Job) -> None:
        counter.started()
        if sleep_ms:
            await asyncio.sleep(sleep_ms / 1000)
        counter.done()

    async def timed(job: Job) -> float:
        return now_ms()

    handler = timed if sleep_ms < 0 else noop
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
                start.append(began - before)
                done.append(after - before)
    emit(start=start, done=done)


def main() -> None:
    a = args()
    role = a["role"]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    if role in ("enqueue", "fill"):
        runner(enqueue(a["redis"], a["n"], a.get("bulk", role == "fill")))
    elif role == "work":
        runner(work(a["redis"], a.get("concurrency", 100), a.get("sleep_ms", 0)))
    elif role == "latency":
        runner(latency(a["redis"], a["n"], a.get("warmup", 10)))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
