"""arq as a benchmark peer (see common.py for the roles).

Settings: ``Worker(functions=[noop], max_jobs=100)``, default ``poll_delay`` 0.5 s (an idle
worker looks at the queue twice a second: that is its latency), ``keep_result=60``.
arq has no bulk-enqueue API; latency polls ``job.result_info()`` every 5 ms (``Job.result()``
raises while a job is in progress).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from common import Counter, args, emit, now_ms, quiet_logging

A = args()
COUNTER: Counter | None = None
SLEEP = A.get("sleep_ms", 0) / 1000


def settings() -> RedisSettings:
    parts = urlsplit(A["redis"])
    return RedisSettings(host=parts.hostname or "127.0.0.1", port=parts.port or 6379)


async def noop(ctx: dict[str, Any], i: int) -> float | None:
    if COUNTER is None:
        return now_ms()
    COUNTER.started()
    if SLEEP:
        await asyncio.sleep(SLEEP)
    COUNTER.done()
    return None


async def enqueue(n: int, fill: bool) -> None:
    pool = await create_pool(settings())
    await pool.ping()
    started = time.perf_counter()
    if fill:  # untimed: concurrent enqueues, 50 at a time (its pool holds 100 connections)
        for i in range(0, n, 50):
            batch = range(i, min(i + 50, n))
            await asyncio.gather(*(pool.enqueue_job("noop", j) for j in batch))
    else:
        for i in range(n):
            await pool.enqueue_job("noop", i)
    emit(seconds=time.perf_counter() - started)


async def work() -> None:
    global COUNTER
    if A.get("sleep_ms", 0) >= 0:
        COUNTER = Counter(A["redis"])
    worker = Worker(
        functions=[noop],  # type: ignore[list-item]
        redis_settings=settings(),
        max_jobs=A.get("concurrency", 100),
        handle_signals=False,
        keep_result=60,
    )
    emit(ready=True)
    await worker.async_run()


async def latency(n: int, warmup: int) -> None:
    pool = await create_pool(settings())
    start: list[float] = []
    done: list[float] = []
    for i in range(warmup + n):
        before = now_ms()
        job = await pool.enqueue_job("noop", i)
        assert job is not None
        while True:
            info = await job.result_info()
            if info is not None:
                break
            await asyncio.sleep(0.005)
        after = now_ms()
        if i >= warmup:
            start.append(float(info.result) - before)
            done.append(after - before)
    emit(start=start, done=done)


if __name__ == "__main__":
    quiet_logging()
    role = A["role"]
    if role == "enqueue" and A.get("bulk"):
        raise SystemExit("arq has no bulk enqueue API")
    if role in ("enqueue", "fill"):
        asyncio.run(enqueue(A["n"], role == "fill"))
    elif role == "work":
        asyncio.run(work())
    elif role == "latency":
        asyncio.run(latency(A["n"], A.get("warmup", 3)))
    else:
        raise SystemExit(f"unknown role {role}")
