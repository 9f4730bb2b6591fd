"""(3) A Node worker and a dockyard worker share one queue: every job completes exactly once."""

from __future__ import annotations

from typing import Any

import pytest

import redis
from dockyard import Job, Queue, Worker

from .support import BULLMQ_VERSIONS, node_args, poll_until

pytestmark = pytest.mark.interop

JOBS = 2000


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_two_thousand_jobs_shared_by_node_and_dockyard_complete_exactly_once(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    ran_here: list[str] = []

    async def record(job: Job) -> dict[str, Any]:
        ran_here.append(job.id)
        return {"ok": True, "i": job.data["i"]}

    async with Queue(queue_name, url=redis_url) as queue:
        await queue.add_bulk([("n", {"i": i}) for i in range(JOBS)])
    worker_node = node(
        "work.mjs",
        node_args(bullmq, redis_url, queue_name, concurrency=20, name="nodew", deadline_ms=60_000),
    )
    worker_node.wait_for(lambda line: line["event"] == "ready", timeout=30)
    async with Worker(queue_name, record, url=redis_url, concurrency=20, name="dock"):
        await poll_until(
            lambda: redis_sync.zcard(f"bull:{queue_name}:completed") == JOBS,
            timeout=60,
            what="all jobs completed",
        )
    worker_node.terminate()
    ran_node = [line["id"] for line in worker_node.events("completed")]
    assert len(ran_here) + len(ran_node) == JOBS
    assert set(ran_here).isdisjoint(ran_node)
    assert ran_here and ran_node, "both workers should have taken jobs"
    pipe = redis_sync.pipeline()
    for i in range(1, JOBS + 1):
        pipe.hmget(f"bull:{queue_name}:{i}", "atm", "ats", "pb")
    rows = pipe.execute()
    assert all(atm == "1" and ats == "1" for atm, ats, _ in rows)
    assert {pb for _, _, pb in rows} == {"dock", "nodew"}
