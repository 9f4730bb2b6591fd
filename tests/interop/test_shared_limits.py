"""A global rate limit and a pause set by one side hold for the other (Node and dockyard
workers on one queue)."""

from __future__ import annotations

from typing import Any

import pytest

import redis
from dockyard import Job, Queue, Worker

from ..faults.helpers import blocked_on_marker
from .support import BULLMQ_VERSIONS, node_args, poll_until

pytestmark = pytest.mark.interop

RATE = 20  # jobs per second, the limit under test
SECONDS = 10


async def test_a_global_rate_limit_holds_across_node_and_dockyard_workers(
    redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    """dockyard sets 20 jobs/s for the queue; a Node 5.62 worker and a dockyard worker
    share 600 jobs for 10 s: the jobs started in those 10 s are 200 within 10 %, and both
    sides ran some."""
    async with Queue(queue_name, url=redis_url) as queue:
        await queue.set_global_rate_limit(RATE, 1.0)
        await queue.add_bulk([("n", {"i": i}) for i in range(600)])
    ran_here: list[str] = []

    async def record(job: Job) -> str:
        ran_here.append(job.id)
        return "dock"

    worker_node = node(
        "work.mjs",
        node_args(
            BULLMQ_VERSIONS[0],
            redis_url,
            queue_name,
            concurrency=10,
            name="nodew",
            deadline_ms=60_000,
        ),
    )
    worker_node.wait_for(lambda line: line["event"] == "ready", timeout=30)
    async with Worker(queue_name, record, url=redis_url, concurrency=10):
        await poll_until(
            lambda: redis_sync.zcard(f"bull:{queue_name}:completed") >= RATE * (SECONDS + 2),
            timeout=40,
            what="12 s of work",
        )
    worker_node.terminate()
    started = sorted(
        int(v)
        for v in (
            redis_sync.hget(f"bull:{queue_name}:{job_id}", "processedOn")
            for job_id in redis_sync.zrange(f"bull:{queue_name}:completed", 0, -1)
        )
        if v is not None
    )
    first = started[0]
    in_window = sum(1 for t in started if t < first + SECONDS * 1000)
    assert RATE * SECONDS * 0.9 <= in_window <= RATE * SECONDS * 1.1, in_window
    by_node = redis_sync.zcard(f"bull:{queue_name}:completed") - len(ran_here)
    assert ran_here and by_node > 0


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_queue_paused_by_node_stops_dockyard_workers(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    """Node pauses the queue: a running dockyard worker takes none of the 5 jobs added
    next; dockyard resumes it: they all complete."""
    ran: list[str] = []

    async def record(job: Job) -> str:
        ran.append(job.id)
        return "ok"

    async with Worker(queue_name, record, url=redis_url, drain_delay=0.2):
        node("admin.mjs", node_args(bullmq, redis_url, queue_name, action="pause")).wait()
        async with Queue(queue_name, url=redis_url) as queue:
            assert await queue.is_paused()
            jobs = [await queue.add("n", {"i": i}) for i in range(5)]
            counts = await queue.get_job_counts("waiting", "paused", "active", "completed")
            assert counts["completed"] == 0 and counts["active"] == 0
            assert ran == []
            await queue.resume()
            for job in jobs:
                await job.wait_until_finished(timeout=10)
    assert sorted(ran) == sorted(j.id for j in jobs)


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_reads_the_metrics_and_counts_of_a_queue_run_by_dockyard(
    bullmq: str, redis_url: str, queue_name: str, node: Any
) -> None:
    """A dockyard worker with metrics finishes 4 jobs (1 fails): Node's getMetrics and
    getJobCounts see them."""

    async def three_of_four(job: Job) -> str:
        if job.data["i"] == 3:
            raise RuntimeError("no")
        return "ok"

    async with Queue(queue_name, url=redis_url) as queue:
        jobs = [await queue.add("n", {"i": i}) for i in range(4)]
        async with Worker(queue_name, three_of_four, url=redis_url,
                          metrics={"max_data_points": 10}):  # fmt: skip
            for job in jobs[:3]:
                await job.wait_until_finished(timeout=10)
            await poll_until(lambda: _failed(queue), timeout=10, what="the failure")
    lines = node("admin.mjs", node_args(bullmq, redis_url, queue_name, action="metrics")).wait()
    done = lines[-1]
    assert done["counts"]["completed"] == 3 and done["counts"]["failed"] == 1
    assert done["metrics"]["completed"]["meta"]["count"] == 3
    assert done["metrics"]["failed"]["meta"]["count"] == 1


async def _failed(queue: Queue) -> bool:
    return (await queue.get_job_counts("failed"))["failed"] == 1


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_queue_paused_by_dockyard_stops_node_workers(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    """dockyard pauses the queue before adding 5 jobs: a running Node worker takes none of
    them; dockyard resumes it: the Node worker completes all 5."""
    async with Queue(queue_name, url=redis_url) as queue:
        await queue.pause()
        worker_node = node(
            "work.mjs",
            node_args(bullmq, redis_url, queue_name, until=5, drainDelay=1, deadline_ms=30_000),
        )
        worker_node.wait_for(lambda line: line["event"] == "ready", timeout=30)
        jobs = [await queue.add("n", {"i": i}) for i in range(5)]
        # The Node worker looked, found nothing it may take, and blocks on the marker.
        await poll_until(
            lambda: blocked_on_marker(redis_sync), timeout=10, what="the Node worker to block"
        )
        assert worker_node.events("active") == []
        counts = await queue.get_job_counts("active", "completed")
        assert counts == {"active": 0, "completed": 0}
        await queue.resume()
        lines = await worker_node.await_exit(timeout=30)
    summary = lines[-1]
    assert sorted(summary["completed"]) == sorted(j.id for j in jobs)


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_get_workers_lists_node_workers_and_dockyard_workers(
    bullmq: str, redis_url: str, queue_name: str, node: Any
) -> None:
    """A Node worker named "nodew" and a dockyard worker named "dock" on one queue:
    dockyard's get_workers() lists both by name."""
    worker_node = node(
        "work.mjs", node_args(bullmq, redis_url, queue_name, name="nodew", deadline_ms=30_000)
    )
    worker_node.wait_for(lambda line: line["event"] == "ready", timeout=30)

    async def noop(job: Job) -> None:
        return None

    async with (
        Queue(queue_name, url=redis_url) as queue,
        Worker(queue_name, noop, url=redis_url, name="dock"),
    ):

        async def both() -> bool:
            names = {w["worker_name"] for w in await queue.get_workers()}
            return {"nodew", "dock"} <= names

        await poll_until(both, timeout=15, what="both workers listed")
    worker_node.terminate()
