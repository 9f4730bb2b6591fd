"""A queue on Redis Cluster against the same queue on one server: enqueue N no-op jobs
(add_bulk), then one worker (concurrency 100) runs them; jobs/s of each and the ratio.

Both stores are private (a redis-server, and a 3-primary cluster from tests/rediscluster.py,
without replicas: on one small machine their replication would be measured, not the
client), the queues are ``{bull}:bench-<run>``, and the two are measured in
turn ``--runs`` times (medians). Usage: ``python bench/cluster_throughput.py [N] [--runs R]``
from the repository root (default 20,000 jobs, 3 runs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.rediscluster

from tests.rediscluster import PREFIX, RedisCluster

from dockyard import Job, Queue, Worker
from dockyard.devserver import RedisServer


async def noop(job: Job) -> None:
    return None


async def measure(url: str, name: str, n: int) -> tuple[float, float]:
    """(enqueue jobs/s, process jobs/s) of ``n`` jobs in a new queue ``name`` on ``url``."""
    async with Queue(name, url=url, prefix=PREFIX) as queue:
        started = time.perf_counter()
        for i in range(0, n, 1000):
            await queue.add_bulk([("noop", {"i": j}) for j in range(i, min(i + 1000, n))])
        enqueue = n / (time.perf_counter() - started)
        worker = Worker(name, noop, url=url, prefix=PREFIX, concurrency=100, drain_delay=0.2)
        started = time.perf_counter()
        runner = asyncio.create_task(worker.run(handle_signals=False))
        done = 0
        while done < n:  # poll the store, as a producer would
            await asyncio.sleep(0.05)
            done = (await queue.get_job_counts("completed"))["completed"]
        process = n / (time.perf_counter() - started)
        await worker.close()
        await runner
        return enqueue, process


async def main(n: int, runs: int) -> None:
    with RedisServer() as server, RedisCluster(replicas=0) as cluster:
        figures: dict[str, list[tuple[float, float]]] = {"one server": [], "cluster": []}
        for run in range(runs):
            order = [("one server", server.url), ("cluster", cluster.url())]
            for name, url in order if run % 2 == 0 else order[::-1]:
                figures[name].append(await measure(url, f"bench-{run}", n))
        for name, values in figures.items():
            enqueue = statistics.median(v[0] for v in values)
            process = statistics.median(v[1] for v in values)
            print(f"{name:>10}: enqueue {enqueue:,.0f} jobs/s, process {process:,.0f} jobs/s")
        ratio = statistics.median(c[1] / s[1] for c, s in zip(
            figures["cluster"], figures["one server"], strict=True))  # fmt: skip
        print(f"cluster / one server (process, median of per-run ratios): {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", nargs="?", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.runs))
