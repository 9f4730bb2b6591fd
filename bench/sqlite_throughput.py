"""Throughput of the sqlite:// backend: enqueue N jobs with add_bulk, then one worker
process at concurrency 100 runs them (no-op async handler; ``def``: a no-op plain
handler, run on the worker's threads). Prints jobs/s and the worker's CPU per job.

Usage: ``python bench/sqlite_throughput.py [N] [def]`` (default 20,000).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from dockyard import Job, Queue, Worker


async def noop(job: Job) -> None:
    return None


def plain_noop(job: Job) -> None:
    return None


async def main(n: int, plain: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        async with Queue("bench", url=url) as queue:
            started = time.perf_counter()
            for i in range(0, n, 1000):
                await queue.add_bulk([("noop", {"i": j}) for j in range(i, min(i + 1000, n))])
            added = time.perf_counter() - started
            print(f"enqueue (add_bulk, batches of 1,000): {n / added:,.0f} jobs/s")
            handler = plain_noop if plain else noop
            worker = Worker("bench", handler, url=url, concurrency=100, drain_delay=0.2)
            started = time.perf_counter()
            cpu = time.process_time()
            runner = asyncio.create_task(worker.run(handle_signals=False))
            done = 0
            while done < n:  # poll the store, as a producer would
                await asyncio.sleep(0.05)
                done = (await queue.get_job_counts("completed"))["completed"]
            took = time.perf_counter() - started
            cpu_us = (time.process_time() - cpu) / n * 1e6  # this process: worker + SQLite
            await worker.close()
            await runner
            kind = "def" if plain else "async def"
            print(
                f"process (1 worker process, concurrency 100, {kind} handler): "
                f"{n / took:,.0f} jobs/s, {cpu_us:.1f} us CPU per job"
            )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000, sys.argv[2:3] == ["def"]))
