"""Node BullMQ (ioredis ``Cluster``) and dockyard (``redis+cluster://``) share a queue on a
Redis Cluster: each runs what the other added, and both find the keys in the one slot."""

from __future__ import annotations

import contextlib

import pytest

from dockyard import Queue, Worker
from dockyard.backends.redis.slots import queue_slot

from ..rediscluster import PREFIX, RedisCluster
from .node_harness import arun_node
from .support import node_args, poll_until

pytestmark = pytest.mark.interop

JOBS = 20


def cluster_args(cluster: RedisCluster, queue: str, **extra: object) -> dict[str, object]:
    """Node's arguments for a Cluster connection on two seeds, under the ``{bull}`` prefix."""
    seeds = [["127.0.0.1", port] for port in cluster.ports[:2]]
    args = node_args("5", cluster.url(), queue, cluster=seeds, **extra)
    return {**args, "prefix": PREFIX}


async def test_node_adds_on_the_cluster_and_dockyard_runs_the_jobs(
    redis_cluster: RedisCluster, cluster_url: str, queue_name: str
) -> None:
    jobs = [{"name": "sum", "data": {"i": i}} for i in range(JOBS)]
    added = await arun_node("produce.mjs", cluster_args(redis_cluster, queue_name, jobs=jobs))
    ids = added[-1]["ids"]
    assert len(ids) == JOBS
    owner = redis_cluster.owner(queue_slot(PREFIX, queue_name))
    completed_key = f"{PREFIX}:{queue_name}:completed"
    with contextlib.closing(redis_cluster.client(owner)) as client:
        async with Worker(queue_name, lambda job: job.data["i"] + 1, url=cluster_url,
                          prefix=PREFIX, name="dock"):  # fmt: skip
            await poll_until(lambda: client.zcard(completed_key) == JOBS, timeout=20,
                             what="every Node job done")  # fmt: skip
        for job_id, i in zip(ids, range(JOBS), strict=True):
            job = client.hgetall(f"{PREFIX}:{queue_name}:{job_id}")
            assert (job["returnvalue"], job["pb"]) == (str(i + 1), "dock")


async def test_dockyard_adds_on_the_cluster_and_node_runs_the_jobs(
    redis_cluster: RedisCluster, cluster_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, url=cluster_url, prefix=PREFIX) as queue:
        added = await queue.add_bulk([("job", {"i": i, "result": i * 3}, {}) for i in range(JOBS)])
        lines = await arun_node(
            "work.mjs", cluster_args(redis_cluster, queue_name, until=JOBS, deadline_ms=30000)
        )
        summary = lines[-1]
        assert summary["event"] == "summary", lines[-3:]
        assert sorted(summary["completed"]) == sorted(job.id for job in added)
        for job in added:
            fresh = await queue.get_job(job.id or "")
            assert fresh is not None and await fresh.get_state() == "completed"
            assert fresh.return_value == job.data["i"] * 3
