"""The network fails between a worker and Redis while Redis itself stays up."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

import redis
from dockyard import Job, Queue, Worker
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
