"""arq as a benchmark peer (max_jobs=100, default poll_delay 0.5 s)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from common import Counter, args, emit, now_ms

A = args()
COUNTER: Counter | None = None


def settings() -> RedisSettings:
    parts = urlsplit(A["redis"])
    return RedisSettings(host=parts.hostname or "127.0.0.1", port=parts.port or 6379)


async def noop(ctx: dict[str, Any], i: int) -> float | None:
    if A.get("sleep_ms", 0) < 0:
        return now_ms()
    assert COUNTER is not None
    COUNTER.started()
    if A.get("sleep_ms"):
        await asyncio.sleep(A["sleep_ms"] / 1000)
    COUNTER.done()
    return None


async def enqueue(n: int) -> None:
    pool = await create_pool(settings())
    await pool.ping()
    started = time.perf_counter()
    for i in range(n):
        await pool.enqueue_job("noop", i)
    emit(seconds=time.perf_counter() - started)


async def work() -> None:
    global COUNTER
    COUNTER = Counter(A["redis"])
    worker = Worker(
        functions=[noop],
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
    role = A["role"]
    if role == "enqueue" and A.get("bulk"):
        raise SystemExit("arq has no bulk enqueue API")
    if role in ("enqueue", "fill"):
        asyncio.run(enqueue(A["n"]))
    elif role == "work":
        asyncio.run(work())
    elif role == "latency":
        asyncio.run(latency(A["n"], A.get("warmup", 10)))
