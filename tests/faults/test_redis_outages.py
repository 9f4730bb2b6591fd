"""Redis dies or goes away while work goes on: nothing is lost, nothing runs twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

import redis
from dockyard import BackendUnavailableError, Job, Queue, Worker
from dockyard.backends import open_backend
from dockyard.devserver import RedisServer

from ..waiting import wait_for

JOBS = 500


async def test_a_redis_crash_and_restart_mid_run_loses_and_repeats_nothing(
    fresh_redis_server: RedisServer,
) -> None:
    """500 jobs, concurrency 10; Redis SIGKILLed after ~100 and restarted 1 s later."""
    server = fresh_redis_server
    runs: Counter[str] = Counter()

    async def work(job: Job) -> str:
        runs[job.id] += 1
        await asyncio.sleep(0.002)
        return "ok"

    client = redis.Redis(port=server.port)
    async with Queue("q", url=server.url) as queue:
        await queue.add_bulk([("j", {"i": i}) for i in range(JOBS)])
    async with Worker("q", work, url=server.url, concurrency=10) as worker:
        await wait_for(lambda: _ran(runs, 100), timeout=20, what="100 jobs run")
        server.kill()
        await asyncio.sleep(1.0)  # the outage itself
        server.start()
        client = redis.Redis(port=server.port)
        await wait_for(lambda: _completed(client, JOBS), timeout=60, what="all jobs completed")
        assert worker.processed == JOBS
    assert sorted(runs) == sorted(str(i) for i in range(1, JOBS + 1))
    assert set(runs.values()) == {1}, "no job may run twice"
    pipe = client.pipeline()
    for i in range(1, JOBS + 1):
        pipe.hget(f"bull:q:{i}", "atm")
    assert set(pipe.execute()) == {b"1"}
    assert client.llen("bull:q:active") == 0 and client.llen("bull:q:wait") == 0


async def _ran(runs: Counter[str], n: int) -> bool:
    return len(runs) >= n


async def _completed(client: redis.Redis, n: int) -> bool:
    return int(client.zcard("bull:q:completed")) == n


async def test_an_idle_worker_survives_an_outage_and_takes_new_jobs(
    fresh_redis_server: RedisServer,
) -> None:
    """The server is stopped for 3 s while the worker waits for work."""
    server = fresh_redis_server

    async def work(job: Job) -> str:
        return "ok"

    async with Worker("q", work, url=server.url, drain_delay=0.5) as worker:
        await asyncio.sleep(0.2)  # let the worker block on the marker
        server.stop()
        await asyncio.sleep(3.0)  # the outage itself
        server.start()
        async with Queue("q", url=server.url) as queue:
            job = await queue.add("after", {})
            assert await job.wait_until_finished(timeout=20) == "ok"
        assert worker.processed == 1


async def test_adding_during_an_outage_longer_than_the_retry_window_raises(
    fresh_redis_server: RedisServer,
) -> None:
    server = fresh_redis_server
    queue = Queue("q", backend=open_backend(server.url, "q", retry_for=1.0))
    await queue.add("before", {})
    server.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{server.port}"):
        await queue.add("during", {})
    assert time.monotonic() - started < 10
    server.start()
    job = await queue.add("after", {})
    assert job.id == "2"
    await queue.close()
