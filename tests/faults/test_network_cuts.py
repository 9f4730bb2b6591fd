"""The network fails between a worker and Redis while Redis itself stays up."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

import redis
from dockyard import Job, Queue, Worker
from dockyard.backends.redis.scripts import load_scripts
from dockyard.devserver import RedisServer

from ..waiting import wait_for
from .helpers import events_per_job, job_hashes
from .proxy import ReplyLosingProxy


async def test_a_lost_reply_to_a_completion_neither_reruns_nor_recompletes_the_job(
    fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker (concurrency 1, lock_duration 1 s, stalled_interval 0.5 s) talks to Redis
    through a proxy. After a warm-up job (so the scripts are cached and a completion is a
    single EVALSHA), jobs A and B are added; the completion of A reaches Redis and is
    applied, its answer is held back and the connection is cut.

    The worker stores A's outcome again, finds it already stored (lock gone) and stops:
    A's handler ran once, A has atm 1, ats 1, no stc, one ``completed`` event. The lost
    answer also carried B, fetched for this worker by the same script (fetch-next) under a
    lock the worker never learned of: B sits in ``active`` until its lock expires, comes
    back through the stalled check (one ``stalled`` event, stc 1) and then runs once:
    B has ats 2, atm 1, one ``completed`` event. Three handler calls in all."""
    client = redis.Redis(port=fresh_redis_server.port, decode_responses=True)
    proxy = await ReplyLosingProxy(fresh_redis_server.port).start()
    calls: Counter[str] = Counter()

    async def work(job: Job) -> str:
        calls[job.id] += 1
        return job.name

    caplog.set_level(logging.INFO, logger="dockyard")
    try:
        async with (
            Queue("q", url=fresh_redis_server.url) as queue,
            Worker(
                "q", work, url=proxy.url, concurrency=1, lock_duration=1, stalled_interval=0.5
            ) as worker,
        ):
            warm = await queue.add("warm", {})
            assert await warm.wait_until_finished(timeout=10) == "warm"
            proxy.hold_reply_to(b"bull:q:completed")
            a, b = await queue.add_bulk([("a", {}), ("b", {})])
            await wait_for(
                lambda: client.zscore("bull:q:completed", a.id) is not None,
                timeout=10,
                what="A's completion to be applied",
            )
            assert proxy.holding
            # The same script moved B to active for this worker: the answer naming it is held.
            assert client.lrange("bull:q:active", 0, -1) == [b.id]
            assert calls[b.id] == 0
            proxy.cut()
            assert await b.wait_until_finished(timeout=15) == "b"
            assert worker.processed == 3
    finally:
        await proxy.close()

    assert calls == Counter({warm.id: 1, a.id: 1, b.id: 1})
    assert any("already stored" in r.getMessage() for r in caplog.records), caplog.text
    hashes = job_hashes(client, [a.id, b.id])
    assert (hashes[a.id]["ats"], hashes[a.id]["atm"], hashes[a.id].get("stc")) == ("1", "1", None)
    assert (hashes[b.id]["ats"], hashes[b.id]["atm"], hashes[b.id].get("stc")) == ("2", "1", "1")
    assert events_per_job(client, "completed") == Counter([warm.id, a.id, b.id])
    assert events_per_job(client, "stalled") == Counter([b.id])
    assert sorted(client.zrange("bull:q:completed", 0, -1)) == sorted([warm.id, a.id, b.id])
    assert client.llen("bull:q:active") == 0 and client.llen("bull:q:wait") == 0
    client.close()


async def test_a_lost_reply_to_a_batched_completion_is_recognised_on_retry_for_every_job(
    fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """As above, for three jobs that finish in one turn of the worker's loop and so are
    completed by one moveManyToFinished call (the proxy holds the answer to that script
    only, by its SHA). The call is applied for all three, its answer is lost, the worker
    stores each outcome again and finds each already stored: every handler ran once, one
    ``completed`` event each. The job the lost answer fetched (D) comes back through the
    stalled check and runs once."""
    client = redis.Redis(port=fresh_redis_server.port, decode_responses=True)
    script = load_scripts()["moveManyToFinished"]
    assert client.script_load(script.source) == script.sha.decode()  # cached: EVALSHA only
    proxy = await ReplyLosingProxy(fresh_redis_server.port).start()
    calls: Counter[str] = Counter()
    gate = asyncio.Event()

    async def work(job: Job) -> str:
        calls[job.id] += 1
        if job.name.startswith("a"):
            await gate.wait()  # the three finish in the same loop turn
        return job.name

    caplog.set_level(logging.INFO, logger="dockyard")
    try:
        async with (
            Queue("q", url=fresh_redis_server.url) as queue,
            Worker(
                "q", work, url=proxy.url, concurrency=3, lock_duration=1, stalled_interval=0.5
            ) as worker,
        ):
            proxy.hold_reply_to(script.sha)
            first = await queue.add_bulk([("a1", {}), ("a2", {}), ("a3", {})])
            await wait_for(lambda: sorted(calls) == sorted(j.id for j in first), timeout=10)
            d = await queue.add("d", {})
            gate.set()
            await wait_for(
                lambda: all(client.zscore("bull:q:completed", j.id) for j in first),
                timeout=10,
                what="the batched completion to be applied",
            )
            assert proxy.holding
            assert client.lrange("bull:q:active", 0, -1) == [d.id]  # fetched by the same call
            proxy.cut()
            assert await d.wait_until_finished(timeout=15) == "d"
            assert worker.processed == 4
    finally:
        await proxy.close()

    ids = [j.id for j in first]
    assert calls == Counter({**{i: 1 for i in ids}, d.id: 1})
    stored_again = [r for r in caplog.records if "already stored" in r.getMessage()]
    assert len(stored_again) == 3, caplog.text
    hashes = job_hashes(client, [*ids, d.id])
    for i in ids:
        assert (hashes[i]["ats"], hashes[i]["atm"], hashes[i].get("stc")) == ("1", "1", None)
    assert (hashes[d.id]["ats"], hashes[d.id]["atm"], hashes[d.id].get("stc")) == ("2", "1", "1")
    assert events_per_job(client, "completed") == Counter([*ids, d.id])
    assert events_per_job(client, "stalled") == Counter([d.id])
    assert client.llen("bull:q:active") == 0 and client.llen("bull:q:wait") == 0
    client.close()
