"""SAQ as a benchmark peer (see common.py for the roles).

Settings: ``Worker(queue, functions=[noop], concurrency=100)``. Each of saq's worker slots
holds a Redis connection in a blocking dequeue, so the queue's client gets
``max_connections = concurrency + 50`` (redis-py's default pool of 100 makes saq's upkeep
timers fail with "Too many connections" at concurrency 100, and stalls it at 1,000). saq
has no bulk enqueue (``Queue.map`` also waits for the results).

Latency: ``job = await queue.enqueue(...)`` then ``await job.refresh(until_complete=10)``
(a pub/sub wake-up). saq 0.26.4 starts a new PSUBSCRIBE for each such wait and ends it
after, so a job that finishes before that subscription is active is missed until the 10 s
timeout; the producer therefore keeps one subscription of saq's multiplexer open for the
whole test (``queue._pubsub.subscribe``). Timeouts that happen anyway fall back to polling
and are counted (``missed``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
from common import Counter, args, emit, now_ms, quiet_logging
from saq import Worker
from saq.queue.redis import RedisQueue

A = args()
COUNTER: Counter | None = None
SLEEP = A.get("sleep_ms", 0) / 1000


async def noop(ctx: dict[str, Any], *, i: int) -> float | None:
    if COUNTER is None:
        return now_ms()
    COUNTER.started()
    if SLEEP:
        await asyncio.sleep(SLEEP)
    COUNTER.done()
    return None


async def main() -> None:
    global COUNTER
    concurrency = A.get("concurrency", 100)
    client = aioredis.from_url(A["redis"], max_connections=concurrency + 50)
    queue = RedisQueue(client, name="bench")
    await queue.connect()
    role = A["role"]
    if role in ("enqueue", "fill"):
        if A.get("bulk") and role == "enqueue":
            raise SystemExit("saq has no bulk enqueue API")
        n = A["n"]
        started = time.perf_counter()
        if role == "fill":  # untimed: concurrent enqueues, 500 at a time
            for i in range(0, n, 500):
                batch = range(i, min(i + 500, n))
                await asyncio.gather(*(queue.enqueue("noop", i=j) for j in batch))
        else:
            for i in range(n):
                await queue.enqueue("noop", i=i)
        emit(seconds=time.perf_counter() - started)
    elif role == "work":
        if A.get("sleep_ms", 0) >= 0:
            COUNTER = Counter(A["redis"])
        worker = Worker(queue, functions=[noop], concurrency=concurrency)
        emit(ready=True)
        await worker.start()
    elif role == "latency":
        await queue._pubsub.subscribe("bench-keep-subscribed")
        await asyncio.sleep(0.2)  # let the PSUBSCRIBE reach the server
        start: list[float] = []
        done: list[float] = []
        missed = 0
        warmup = A.get("warmup", 10)
        for i in range(warmup + A["n"]):
            before = now_ms()
            job = await queue.enqueue("noop", i=i)
            assert job is not None
            try:
                await job.refresh(until_complete=10)
            except TimeoutError:
                missed += 1
                while job.status not in ("complete", "failed"):
                    await asyncio.sleep(0.001)
                    await job.refresh()
            after = now_ms()
            if i >= warmup:
                start.append(float(job.result) - before)
                done.append(after - before)
        emit(start=start, done=done, missed=missed)
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    quiet_logging()
    asyncio.run(main())
