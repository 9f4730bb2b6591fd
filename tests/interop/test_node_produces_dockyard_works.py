"""(1) Node BullMQ adds jobs of every kind; a dockyard worker runs them; Node reads the results."""

from __future__ import annotations

import pytest

import redis
from dockyard import Worker

from .node_harness import arun_node
from .support import (
    BULLMQ_VERSIONS,
    KINDS,
    behave,
    finished_count,
    node_args,
    node_jobs,
    poll_until,
    stream_events,
)

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_jobs_of_every_kind_are_run_by_dockyard_and_read_back_by_node(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    added = await arun_node(
        "produce.mjs", node_args(bullmq, redis_url, queue_name, jobs=node_jobs(KINDS))
    )
    ids = added[-1]["ids"]
    assert len(ids) == len(KINDS)
    async with Worker(queue_name, behave, url=redis_url, concurrency=4, name="dock"):
        await poll_until(
            lambda: finished_count(redis_sync, queue_name) == len(KINDS),
            timeout=20,
            what="every job finished",
        )
    lines = await arun_node("inspect.mjs", node_args(bullmq, redis_url, queue_name, ids=ids))
    seen = {line["id"]: line for line in lines if line["event"] == "job"}
    for job_id, kind in zip(ids, KINDS, strict=True):
        job = seen[job_id]
        assert job["found"], kind.key
        assert job["state"] == kind.state, kind.key
        assert job["attemptsMade"] == kind.attempts_made, kind.key
        assert job["returnvalue"] == kind.return_value, kind.key
        assert job["failedReason"] == kind.failed_reason or kind.state == "completed", kind.key
        assert job["progress"] == kind.progress, kind.key
        assert job["logs"] == kind.logs, kind.key
        assert job["processedBy"] == "dock", kind.key
    counts = next(line["counts"] for line in lines if line["event"] == "counts")
    assert counts["completed"] == 5 and counts["failed"] == 2
    names = {e["event"] for e in stream_events(redis_sync, queue_name)}
    assert {"active", "completed", "failed", "retries-exhausted", "progress", "delayed"} <= names
