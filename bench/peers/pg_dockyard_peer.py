"""dockyard on ``postgresql://`` as a workload-P peer (see pg_common.py): ``enqueue``
(bulk, batches of 1,000, timed after the store is open and its schema made) or ``work``
(one Worker at the given concurrency until n jobs ran)."""

from __future__ import annotations

import asyncio
import time

from common import emit
from pg_common import Done, run_role

from dockyard import Job, Queue, Worker

QUEUE = "bench"


async def enqueue(url: str, n: int) -> None:
    async with Queue(QUEUE, url=url) as queue:
        await queue.get_job_counts("wait")  # connected, schema made: before the clock
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            await queue.add_bulk([("noop", {"i": j}) for j in range(i, min(i + 1000, n))])
        emit(seconds=time.perf_counter() - t0)


async def work(url: str, n: int, concurrency: int) -> None:
    done = Done(n)

    async def noop(job: Job) -> None:
        done.started()
        done.ended()

    worker = Worker(QUEUE, noop, url=url, concurrency=concurrency)
    runner = asyncio.create_task(worker.run(handle_signals=False))
    await done.finished.wait()
    emit(**done.result())
    await worker.close()
    await runner


if __name__ == "__main__":
    run_role(enqueue, work)
