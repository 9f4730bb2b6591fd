"""(5) The official Python `bullmq` package adds jobs; a dockyard worker runs them."""

from __future__ import annotations

import pytest

import redis
from dockyard import Queue, Worker

from .pybullmq import add_with_pybullmq
from .support import KINDS, behave, finished_count, node_jobs, poll_until

pytestmark = pytest.mark.interop


async def test_jobs_added_by_the_python_bullmq_package_are_run_by_dockyard(
    redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    ids = await add_with_pybullmq(redis_url, queue_name, node_jobs(KINDS))
    assert len(ids) == len(KINDS)
    async with Worker(queue_name, behave, url=redis_url, concurrency=4):
        await poll_until(
            lambda: finished_count(redis_sync, queue_name) == len(KINDS),
            timeout=20,
            what="every job finished",
        )
    async with Queue(queue_name, url=redis_url) as queue:
        for job_id, kind in zip(ids, KINDS, strict=True):
            job = await queue.get_job(job_id)
            assert job is not None, kind.key
            assert await job.get_state() == kind.state, kind.key
            assert job.attempts_made == kind.attempts_made, kind.key
            assert job.return_value == kind.return_value, kind.key
            assert job.progress == kind.progress, kind.key
