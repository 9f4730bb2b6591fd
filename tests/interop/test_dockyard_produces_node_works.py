"""(2) dockyard adds jobs of every kind; a Node BullMQ worker runs them; dockyard reads back."""

from __future__ import annotations

import pytest

import redis
from dockyard import Queue

from .node_harness import arun_node
from .support import BULLMQ_VERSIONS, KINDS, node_args

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_dockyard_jobs_of_every_kind_are_run_by_node_and_read_back_by_dockyard(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    async with Queue(queue_name, url=redis_url) as queue:
        jobs = [await queue.add(kind.key, kind.data, **kind.dockyard_opts) for kind in KINDS]
        lines = await arun_node(
            "work.mjs",
            node_args(
                bullmq, redis_url, queue_name, until="idle", name="nodew", deadline_ms=30_000
            ),
            timeout=60,
        )
        summary = lines[-1]
        assert summary["event"] == "summary"
        assert len(summary["completed"]) + len(summary["failed"]) == len(KINDS)
        for added, kind in zip(jobs, KINDS, strict=True):
            job = await queue.get_job(added.id)
            assert job is not None, kind.key
            assert await job.get_state() == kind.state, kind.key
            assert job.attempts_made == kind.attempts_made, kind.key
            assert job.return_value == kind.return_value, kind.key
            if kind.failed_reason is not None:
                assert job.failed_reason == kind.failed_reason, kind.key
            assert job.progress == kind.progress, kind.key
            assert await queue.get_job_logs(added.id) == kind.logs, kind.key
            assert job.processed_by == "nodew", kind.key
