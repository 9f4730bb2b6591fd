"""procrastinate on PostgreSQL as a workload-P peer (see pg_common.py): ``enqueue``
(``batch_defer_async``, batches of 1,000, timed after the schema is applied) or ``work``
(``run_worker_async`` at the given concurrency until n jobs ran)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import procrastinate
from common import emit
from pg_common import Done, run_role

DONE: Done | None = None


def make_app(url: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop", queue="bench")
    async def noop(i: int) -> None:
        assert DONE is not None
        DONE.started()
        DONE.ended()

    return app


async def enqueue(url: str, n: int) -> None:
    app = make_app(url)
    async with app.open_async():
        with contextlib.suppress(Exception):  # the schema is there already
            await app.schema_manager.apply_schema_async()
        task: Any = app.tasks["noop"]
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            await task.batch_defer_async(*({"i": j} for j in range(i, min(i + 1000, n))))
        emit(seconds=time.perf_counter() - t0)


async def work(url: str, n: int, concurrency: int) -> None:
    global DONE
    DONE = Done(n)
    app = make_app(url)
    async with app.open_async():
        runner = asyncio.create_task(
            app.run_worker_async(queues=["bench"], concurrency=concurrency, wait=True)
        )
        await DONE.finished.wait()
        emit(**DONE.result())
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner


if __name__ == "__main__":
    run_role(enqueue, work)
