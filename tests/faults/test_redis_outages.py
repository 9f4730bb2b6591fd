"""Redis dies or goes away while work goes on: nothing is lost, nothing runs twice.

Every test has a redis-server of its own (``fresh_redis_server``: appendonly yes,
appendfsync always), so a SIGKILL loses no acknowledged write.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

import pytest

import redis
from dockyard import BackendUnavailableError, Job, Queue, Worker
from dockyard.backends import open_backend
from dockyard.devserver import RedisServer

from ..waiting import wait_for
from .helpers import blocked_on_marker, events_per_job, job_hashes

JOBS = 500


def _client(server: RedisServer) -> redis.Redis:
    return redis.Redis(port=server.port, decode_responses=True)


async def test_a_redis_crash_mid_run_loses_no_job_and_completes_none_twice(
    fresh_redis_server: RedisServer,
) -> None:
    """500 jobs, one in-process worker (concurrency 10). Redis is SIGKILLed once 250
    handler calls began and restarted 1 s later; the worker reconnects by itself.

    Asserted: ``completed`` holds exactly the 500 ids; the handler ran exactly once per job
    (500 calls in all, ``worker.processed`` 500); every job has atm 1 and its own return
    value, and exactly one ``completed`` event. A job whose outcome reply was lost in the
    crash is not stored twice: the worker's retry finds the lock gone and stops, so its atm
    is 1 too. A finish that also fetched the next jobs (fetch-next) and whose reply was lost
    leaves those jobs in ``active`` under a lock the worker never learned (seen in about
    one run in six); they come back through the stalled check without having run, so for
    every job ats == 1 + stc, with stc 0 or 1. ``lock_duration`` 5 s and
    ``stalled_interval`` 0.5 s keep that recovery short, and are still far longer than a
    job is held across the outage (its 2 ms handler plus the ~1.5 s until reconnection)."""
    server = fresh_redis_server
    calls: Counter[str] = Counter()

    async def work(job: Job) -> int:
        calls[job.id] += 1
        await asyncio.sleep(0.002)
        return int(job.data["i"])

    async with Queue("q", url=server.url) as queue:
        ids = [job.id for job in await queue.add_bulk([("j", {"i": i}) for i in range(JOBS)])]
    assert len(set(ids)) == JOBS

    async with Worker(
        "q", work, url=server.url, concurrency=10, lock_duration=5, stalled_interval=0.5
    ) as worker:
        await wait_for(lambda: len(calls) >= JOBS // 2, timeout=30, what="250 handler calls")
        server.kill()
        await asyncio.sleep(1.0)  # the outage itself
        server.start()
        client = _client(server)
        # Read before the event loop runs again: the state as the crash left it.
        assert client.zcard("bull:q:completed") < JOBS, "the crash must come mid-run"
        await wait_for(
            lambda: client.zcard("bull:q:completed") == JOBS, timeout=40, what="500 completed"
        )
        assert worker.processed == JOBS

    assert sorted(client.zrange("bull:q:completed", 0, -1)) == sorted(ids)
    assert calls == Counter(ids), "every job's handler ran exactly once"
    assert events_per_job(client, "completed") == Counter(ids)
    hashes = job_hashes(client, ids)
    for i, job_id in enumerate(ids):
        h = hashes[job_id]
        assert h["atm"] == "1" and h["returnvalue"] == str(i), (job_id, h)
        assert h.get("stc", "0") in ("0", "1") and int(h["ats"]) == 1 + int(h.get("stc", 0)), h
    assert client.llen("bull:q:active") == 0 and client.llen("bull:q:wait") == 0
    assert client.zcard("bull:q:failed") == 0
    client.close()


async def test_an_idle_worker_outlives_a_3_s_outage_and_processes_the_next_job(
    fresh_redis_server: RedisServer,
) -> None:
    """A worker with no work (default drain_delay 5 s) blocks in BZPOPMIN; the server is
    stopped for 3 s under it, then started again. The worker's task is still running, its
    fetch loop waits on the marker again, and a job added afterwards is processed: one
    handler call, return value stored."""
    server = fresh_redis_server
    calls: list[str] = []

    async def work(job: Job) -> str:
        calls.append(job.id)
        return "ok"

    worker = Worker("q", work, url=server.url)
    task = asyncio.create_task(worker.run(handle_signals=False))
    client = _client(server)
    try:
        await wait_for(lambda: blocked_on_marker(client), timeout=10, what="the blocking wait")
        client.close()
        server.stop()
        await asyncio.sleep(3.0)  # the outage itself
        assert not task.done(), "the worker must outlive the outage"
        server.start()
        client = _client(server)
        await wait_for(lambda: blocked_on_marker(client), timeout=10, what="a new blocking wait")
        async with Queue("q", url=server.url) as queue:
            job = await queue.add("after", {})
            assert await job.wait_until_finished(timeout=10) == "ok"
        assert calls == [job.id]
        assert worker.processed == 1
        assert not task.done(), "the worker must keep running after the outage"
    finally:
        await worker.close()
        await asyncio.wait_for(task, 10)
        client.close()
    assert task.exception() is None


async def test_adding_during_an_outage_longer_than_the_retry_window_raises_naming_the_server(
    fresh_redis_server: RedisServer,
) -> None:
    """retry_for 1 s; the server is stopped for the whole of two adds. The add of a queue
    that was connected before raises BackendUnavailableError naming 127.0.0.1:<port>; a
    queue that never reached the server retries for most of its window (0.5 s to 3 s) and
    raises the same, with the server's URL. Neither add wrote anything: after a restart
    the next add gets id 2 and the queue holds exactly the 2 jobs added while it was up."""
    server = fresh_redis_server
    address = re.escape(f"127.0.0.1:{server.port}")
    queue = Queue("q", backend=open_backend(server.url, "q", retry_for=1.0))
    before = await queue.add("before", {})
    server.stop()
    try:
        with pytest.raises(BackendUnavailableError, match=address):
            await queue.add("during", {})

        never_connected = Queue("q", backend=open_backend(server.url, "q", retry_for=1.0))
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match=re.escape(server.url)):
            await never_connected.add("during", {})
        took = time.monotonic() - started
        assert 0.5 <= took < 3.0, f"gave up after {took:.2f} s with a 1 s retry window"
        await never_connected.close()

        server.start()
        after = await queue.add("after", {})
        assert (before.id, after.id) == ("1", "2")
        assert await queue.get_job_counts("waiting") == {"waiting": 2}
        client = _client(server)
        assert sorted(client.lrange("bull:q:wait", 0, -1)) == ["1", "2"]
        assert [h["name"] for h in job_hashes(client, ["1", "2"]).values()] == ["before", "after"]
        client.close()
    finally:
        await queue.close()


async def test_an_add_during_an_outage_shorter_than_the_retry_window_waits_and_succeeds(
    fresh_redis_server: RedisServer,
) -> None:
    """retry_for 3 s. The server is stopped; 0.2 s into the outage an add starts; the
    server is started again 2 s after that. The add, 2 s into its 3 s window, must wait
    for the server and succeed: it returns job 2 (after job 1 added before), within its
    window (3 s, plus 0.5 s for the last connection attempt), and the queue then holds
    exactly jobs 1 and 2."""
    server = fresh_redis_server
    queue = Queue("q", backend=open_backend(server.url, "q", retry_for=3.0))
    try:
        before = await queue.add("before", {})
        server.stop()
        await asyncio.sleep(0.2)  # the add comes 0.2 s into the outage
        started = time.monotonic()
        adding = asyncio.create_task(queue.add("during", {}))
        await asyncio.sleep(2.0)  # the rest of the outage; the add keeps trying meanwhile
        server.start()
        during = await asyncio.wait_for(adding, 5.0)
        took = time.monotonic() - started
        assert (before.id, during.id) == ("1", "2")
        assert took < 3.5, f"the add took {took:.2f} s"
        client = _client(server)
        assert sorted(client.lrange("bull:q:wait", 0, -1)) == ["1", "2"]
        client.close()
    finally:
        await queue.close()


async def test_an_idle_worker_closes_within_2_s_while_redis_is_down(
    fresh_redis_server: RedisServer,
) -> None:
    """A worker with no job blocks on the marker; the server is stopped and stays down.
    ``close()`` ends ``run()`` within 2 s (it is not held by the reconnection attempts,
    which have no time limit for a worker) and the handler was never called."""
    server = fresh_redis_server
    calls: list[str] = []

    async def work(job: Job) -> None:
        calls.append(job.id)

    worker = Worker("q", work, url=server.url)
    task = asyncio.create_task(worker.run(handle_signals=False))
    client = _client(server)
    try:
        await wait_for(lambda: blocked_on_marker(client), timeout=10, what="the blocking wait")
    finally:
        client.close()
    server.stop()
    await asyncio.sleep(0.5)  # the worker sees the loss and starts reconnecting
    started = time.monotonic()
    await worker.close()
    await asyncio.wait_for(task, 2.0)
    assert time.monotonic() - started < 2.0
    assert task.exception() is None
    assert calls == []
