"""Throughput of the postgresql:// backend on a private server: enqueue N jobs with
add_bulk, then one worker process at concurrency 50 runs them (no-op async handler), as
issue 15's figure (10,000 jobs). Prints jobs/s and transactions per job, then the
latency from add() to the handler starting with an idle worker.

Usage: ``python bench/postgres_throughput.py [N]`` (default 10,000). Needs PostgreSQL's
server binaries (``make postgres``); starts and stops its own server.
"""

from __future__ import annotations

import asyncio
import sys
import time

import psycopg

from dockyard import Job, Queue, Worker
from dockyard.devserver import PostgresServer


async def noop(job: Job) -> None:
    return None


async def latency(url: str, queue: Queue, n: int = 200) -> None:
    """p50/p99 from add() to the handler starting, one job at a time, worker idle."""
    started: asyncio.Queue[float] = asyncio.Queue()

    async def stamp(job: Job) -> None:
        started.put_nowait(time.perf_counter())

    worker = Worker("lat", stamp, url=url, concurrency=1)
    runner = asyncio.create_task(worker.run(handle_signals=False))
    async with Queue("lat", url=url) as lat:
        await lat.add("warm", {})
        await started.get()
        took: list[float] = []
        for _ in range(n):
            await asyncio.sleep(0.01)  # let the worker go idle (LISTEN)
            t0 = time.perf_counter()
            await lat.add("x", {})
            took.append((await started.get()) - t0)
    await worker.close()
    await runner
    took.sort()
    print(
        f"enqueue -> start, idle worker: p50 {took[n // 2] * 1000:.2f} ms, "
        f"p99 {took[int(n * 0.99)] * 1000:.2f} ms"
    )


def _calls(server: PostgresServer) -> int:
    """Statements the server has run (pg_stat_statements is not assumed: xact commits +
    rollbacks and tuples returned are not round trips, so count via pg_stat_database)."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            ("dockyard",),
        ).fetchone()
        return int(row[0]) if row else 0


async def main(n: int) -> None:
    with PostgresServer() as server:
        url = server.url(schema="bench")
        async with Queue("bench", url=url) as queue:
            started = time.perf_counter()
            for i in range(0, n, 1000):
                await queue.add_bulk([("noop", {"i": j}) for j in range(i, min(i + 1000, n))])
            added = time.perf_counter() - started
            print(f"enqueue (add_bulk, batches of 1,000): {n / added:,.0f} jobs/s")
            before = _calls(server)
            worker = Worker("bench", noop, url=url, concurrency=50, drain_delay=0.2)
            started = time.perf_counter()
            runner = asyncio.create_task(worker.run(handle_signals=False))
            done = 0
            while done < n:  # poll the store, as a producer would
                await asyncio.sleep(0.05)
                done = (await queue.get_job_counts("completed"))["completed"]
            took = time.perf_counter() - started
            await worker.close()
            await runner
            txs = _calls(server) - before
            print(f"process (1 worker process, concurrency 50): {n / took:,.0f} jobs/s")
            print(f"transactions per job (all connections): {txs / n:.2f}")
        await latency(url, queue)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
