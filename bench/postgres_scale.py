"""A queue of N finished jobs on the postgresql:// store, on a private server: how long the
counts, the first and the last page, and retention take. Prints; asserts nothing.

Fill: ``add_bulk`` (batches of 10,000), then one SQL UPDATE moves every job to
``completed`` as a worker would leave it (finished_on, processed_on, returnvalue; the
completed list's score is the finish time, spread over the last 1,000 s), without N
handler runs. Then, each the median
of 5 after 1 warm-up: ``get_job_counts()`` (every state), ``get_jobs("completed", 0, 19)``
(the newest 20) and the oldest 20 (``-20..-1``); then ``VACUUM ANALYZE`` and the same again;
then ``clean(0, limit=B)`` in batches until the queue is empty, timing each batch.

Usage: ``python bench/postgres_scale.py [N] [--batch 10000]`` (default 1,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from dockyard import Queue
from dockyard.devserver import PostgresServer

SCHEMA = "bench"


async def timed(label: str, call: Callable[[], Awaitable[Any]], times: int = 5) -> None:
    await call()  # warm-up (plans, caches)
    took = []
    for _ in range(times):
        t0 = time.perf_counter()
        await call()
        took.append((time.perf_counter() - t0) * 1000)
    print(f"  {label}: {statistics.median(took):.2f} ms (min {min(took):.2f}, max {max(took):.2f})")


async def reads(queue: Queue, n: int) -> None:
    await timed("get_job_counts() (all states)", queue.get_job_counts)
    await timed(
        "first page get_jobs('completed', 0, 19)", lambda: queue.get_jobs("completed", 0, 19)
    )
    await timed(
        "last page get_jobs('completed', -20, -1)", lambda: queue.get_jobs("completed", -20, -1)
    )
    counts = await queue.get_job_counts("completed")
    print(f"  (completed: {counts['completed']:,} of {n:,})")


def sizes(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_size_pretty(pg_table_size(%s)), pg_size_pretty(pg_indexes_size(%s))",
            (f"{SCHEMA}.jobs", f"{SCHEMA}.jobs"),
        ).fetchone()
    assert row is not None
    return f"jobs table {row[0]}, its indexes {row[1]}"


async def main(n: int, batch: int, server: PostgresServer) -> None:
    url = server.url(schema=SCHEMA)
    async with Queue("scale", url=url) as queue:
        t0 = time.perf_counter()
        step = 10_000
        for i in range(0, n, step):
            await queue.add_bulk([("noop", {"i": j}) for j in range(i, min(i + step, n))])
        print(f"add_bulk {n:,} jobs: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            now = int(time.time() * 1000)
            conn.execute(
                f"UPDATE {SCHEMA}.jobs SET state = 'completed', processed_on = %s, "
                "finished_on = %s - 1000000 + (score %% 1000000), "
                "score = %s - 1000000 + (score %% 1000000), "
                "returnvalue = 'null', atm = 1 WHERE state IN ('wait', 'paused')",
                (now, now, now),
            )
        print(
            f"completed by one SQL UPDATE: {time.perf_counter() - t0:.1f} s; {sizes(server.url())}"
        )
        print("reads right after the fill:")
        await reads(queue, n)
        with psycopg.connect(server.url(), autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute(f"VACUUM ANALYZE {SCHEMA}.jobs")
            print(f"VACUUM ANALYZE: {time.perf_counter() - t0:.1f} s; {sizes(server.url())}")
        print("reads after VACUUM ANALYZE:")
        await reads(queue, n)
        took: list[float] = []
        t0 = time.perf_counter()
        while True:
            t1 = time.perf_counter()
            gone = await queue.clean(0, limit=batch, state="completed")
            took.append((time.perf_counter() - t1) * 1000)
            if len(gone) < batch:
                break
        total = time.perf_counter() - t0
        print(
            f"retention: clean(0, limit={batch:,}) x {len(took)}: {total:.1f} s in all "
            f"({n / total:,.0f} jobs/s); a batch median {statistics.median(took):.0f} ms, "
            f"max {max(took):.0f} ms; {sizes(server.url())}"
        )
        print("reads of the emptied queue:")
        await reads(queue, n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    a = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # our server stops on SIGTERM
    with PostgresServer() as pg:
        asyncio.run(main(a.n, a.batch, pg))
