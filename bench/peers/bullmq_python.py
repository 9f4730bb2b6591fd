"""The official Python ``bullmq`` package as a benchmark peer (same roles as dockyard_peer).

Settings: ``Worker(q, fn, {"concurrency": 100})`` on asyncio's default loop (as its docs);
latency via a ``QueueEvents`` 'completed' listener (3.4.4 has no ``waitUntilFinished``).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from bullmq import Queue, QueueEvents, Worker
from common import Counter, args, emit, now_ms, quiet_logging

QUEUE = "bench"


async def enqueue(url: str, n: int, bulk: bool) -> None:
    queue = Queue(QUEUE, {"connection": url})
    await queue.getJobCounts("wait")
    started = time.perf_counter()
    if bulk:
        for i in range(0, n, 1000):
            await queue.addBulk(
                [{"name": "noop", "data": {"i": j}} for j in range(i, min(i + 1000, n))]
            )
    else:
        for i in range(n):
            await queue.add("noop", {"i": i})
    emit(seconds=time.perf_counter() - started)
    await queue.close()


async def work(url: str, concurrency: int, sleep_ms: float) -> None:
    counter = Counter(url) if sleep_ms >= 0 else None

    async def noop(job: Any, token: str) -> Any:
        if counter is None:
            return now_ms()
        counter.started()
        if sleep_ms:
            await asyncio.sleep(sleep_ms / 1000)
        counter.done()
        return None

    worker = Worker(QUEUE, noop, {"connection": url, "concurrency": concurrency})
    emit(ready=True)
    await asyncio.Event().wait()
    await worker.close()


async def latency(url: str, n: int, warmup: int) -> None:
    queue = Queue(QUEUE, {"connection": url})
    events = QueueEvents(QUEUE, {"connection": url})
    waiting: dict[str, asyncio.Future[Any]] = {}

    def completed(payload: dict[str, Any], *_: Any) -> None:
        fut = waiting.pop(str(payload.get("jobId")), None)
        if fut is not None and not fut.done():
            fut.set_result(payload.get("returnvalue"))

    events.on("completed", completed)
    await asyncio.sleep(0.5)  # let the events reader start at "$"
    start: list[float] = []
    done: list[float] = []
    loop = asyncio.get_running_loop()
    for i in range(warmup + n):
        before = now_ms()
        job = await queue.add("noop", {"i": i})
        fut = waiting[str(job.id)] = loop.create_future()
        began = float(await asyncio.wait_for(fut, 10))
        after = now_ms()
        if i >= warmup:
            start.append(began - before)
            done.append(after - before)
    emit(start=start, done=done)
    os._exit(0)  # QueueEvents.close() of 3.4.4 can hang (see peer-figures.md)


def main() -> None:
    quiet_logging()
    a = args()
    role = a["role"]
    if role in ("enqueue", "fill"):
        asyncio.run(enqueue(a["redis"], a["n"], a.get("bulk", role == "fill")))
    elif role == "work":
        asyncio.run(work(a["redis"], a.get("concurrency", 100), a.get("sleep_ms", 0)))
    elif role == "latency":
        asyncio.run(latency(a["redis"], a["n"], a.get("warmup", 10)))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
