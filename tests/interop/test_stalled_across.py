"""(4) A worker killed mid-job on one side is recovered by the other side's stalled check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import redis
from dockyard import Job, Queue, Worker

from .support import node_args

pytestmark = pytest.mark.interop

RUNNER = Path(__file__).with_name("dockyard_worker.py")


async def test_a_killed_dockyard_worker_is_recovered_by_a_node_worker(
    redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    async with Queue(queue_name, url=redis_url) as queue:
        job = await queue.add("h", {"i": 1})
    args = {
        "redis": redis_url,
        "queue": queue_name,
        "lock_duration": 1.0,
        "stalled_interval": 0.5,
        "behaviour": "hang",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - a process to kill, not to await
        [sys.executable, str(RUNNER), json.dumps(args)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("active"):
                break
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert redis_sync.lrange(f"bull:{queue_name}:active", 0, -1) == [job.id]
    rescuer_args = node_args(
        "5",
        redis_url,
        queue_name,
        stalledInterval=500,
        lockDuration=5000,
        until=1,
        deadline_ms=30_000,
    )
    rescuer = node("work.mjs", rescuer_args)
    done = rescuer.wait(timeout=40)
    assert done[-1]["event"] == "summary" and done[-1]["completed"] == [job.id]
    h = redis_sync.hgetall(f"bull:{queue_name}:{job.id}")
    assert h["stc"] == "1" and h["ats"] == "2"
    assert redis_sync.zscore(f"bull:{queue_name}:completed", job.id) is not None
    events = [fields for _, fields in redis_sync.xrange(f"bull:{queue_name}:events")]
    assert {"event": "stalled", "jobId": job.id} in events


async def test_a_killed_node_worker_is_recovered_by_a_dockyard_worker(
    redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    async with Queue(queue_name, url=redis_url) as queue:
        job = await queue.add("h", {"i": 1, "behaviour": "hang"})
        victim_args = node_args(
            "5", redis_url, queue_name, lockDuration=1000, stalledInterval=500, deadline_ms=30_000
        )
        victim = node("work.mjs", victim_args)
        victim.wait_for(lambda line: line["event"] == "active", timeout=30)
        victim.kill()
        assert redis_sync.lrange(f"bull:{queue_name}:active", 0, -1) == [job.id]

        async def finish(j: Job) -> str:
            return "rescued"

        async with Worker(queue_name, finish, url=redis_url, lock_duration=1, stalled_interval=0.5):
            assert await job.wait_until_finished(timeout=20) == "rescued"
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert stored.stalled_counter == 1 and stored.attempts_started == 2
