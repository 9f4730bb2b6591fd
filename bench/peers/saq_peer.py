"""SAQ as a benchmark peer (concurrency 100; latency via job.refresh(until_complete))."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from common import Counter, args, emit, now_ms
from saq import Queue, Worker

A = args()
COUNTER: Counter | None = None


async def noop(ctx: dict[str, Any], *, i: int) -> float | None:
    if A.get("sleep_ms", 0) < 0:
        return now_ms()
    assert COUNTER is not None
    COUNTER.started()
    if A.get("sleep_ms"):
        await asyncio.sleep(A["sleep_ms"] / 1000)
    COUNTER.done()
    return None


async def main() -> None:
    global COUNTER
    queue = Queue.from_url(A["redis"], name="bench")
    await queue.connect()
    role = A["role"]
    if role in ("enqueue", "fill"):
        if A.get("bulk") and role == "enqueue":
            raise SystemExit("saq has no bulk enqueue API")
        started = time.perf_counter()
        for i in range(A["n"]):
            await queue.enqueue("noop", i=i)
        emit(seconds=time.perf_counter() - started)
    elif role == "work":
        COUNTER = Counter(A["redis"])
        worker = Worker(queue, functions=[noop], concurrency=A.get("concurrency", 100))
        emit(ready=True)
        await worker.start()
    elif role == "latency":
        start: list[float] = []
        done: list[float] = []
        for i in range(10 + A["n"]):
            before = now_ms()
            job = await queue.enqueue("noop", i=i)
            assert job is not None
            try:
                await job.refresh(until_complete=10)
            except Exception:  # saq's pub/sub wait can time out: poll the job instead
                while job.status not in ("complete", "failed"):
                    await asyncio.sleep(0.001)
                    await job.refresh()
            after = now_ms()
            if i >= 10:
                start.append(float(job.result) - before)
                done.append(after - before)
        emit(start=start, done=done)


if __name__ == "__main__":
    asyncio.run(main())
