"""Job schedulers upserted by dockyard, read by Node's getJobScheduler and advanced by Node
5.62.0 / 6.7.0 workers (alone and together with dockyard workers)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

import redis
from dockyard import Queue, Worker

from .support import BULLMQ_VERSIONS, behave, node_args, poll_until, stream_events
from .test_node_schedulers import assert_spaced, completed_iterations, scheduler_call

pytestmark = pytest.mark.interop

EVERY = 250


def by_worker(r: redis.Redis, queue: str, who: str) -> int:
    q = f"bull:{queue}"
    return sum(1 for i in r.zrange(f"{q}:completed", 0, -1) if r.hget(f"{q}:{i}", "pb") == who)


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_reads_a_dockyard_scheduler_as_dockyard_does(
    bullmq: str, redis_url: str, queue_name: str
) -> None:
    """Node's getJobScheduler answers the fields dockyard wrote (B.1 names and encodings)."""
    async with Queue(queue_name, url=redis_url) as queue:
        await queue.upsert_job_scheduler(
            "rep", pattern="0 30 6 * * 1-5", tz="Europe/Berlin", limit=9,
            end=2_100_000_000, template={"name": "report", "data": {"a": [1, "x"]},
                                         "opts": {"attempts": 3, "priority": 2}},
        )  # fmt: skip
        await queue.upsert_job_scheduler("tick", every=1.5, offset=0.25, start=2_000_000_000)
        ours = {s.id: s for s in await queue.get_job_schedulers()}
    got = await scheduler_call(bullmq, redis_url, queue_name, "list")
    theirs = {s.get("key") or s.get("id"): s for s in got["schedulers"]}
    assert set(theirs) == {"rep", "tick"}
    rep, ours_rep = theirs["rep"], ours["rep"]
    assert rep["name"] == "report" and rep["pattern"] == "0 30 6 * * 1-5"
    assert rep["tz"] == "Europe/Berlin" and rep["limit"] == 9
    assert rep["endDate"] == 2_100_000_000_000 and rep["iterationCount"] == 1
    assert ours_rep.next_run is not None and rep["next"] == round(ours_rep.next_run * 1000)
    assert rep["template"]["data"] == {"a": [1, "x"]}
    assert rep["template"]["opts"]["attempts"] == 3 and rep["template"]["opts"]["priority"] == 2
    tick = theirs["tick"]
    assert tick["every"] == 1500 and tick["offset"] == 250 and tick["name"] == "tick"
    assert tick["startDate"] == 2_000_000_000_000 and tick["next"] == 2_000_000_000_000


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_workers_advance_a_dockyard_every_scheduler(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    # The worker waits first: a late first start would (rightly) skip the slots it missed.
    worker = node("work.mjs", node_args(bullmq, redis_url, queue_name, name="node"))
    await worker.await_for(lambda line: line.get("event") == "ready", timeout=30)
    async with Queue(queue_name, url=redis_url) as queue:
        first = await queue.upsert_job_scheduler(
            "tick", every=EVERY / 1000, template={"name": "beat", "data": {"i": 4}}
        )
    await poll_until(
        lambda: len(completed_iterations(redis_sync, queue_name, "tick")) >= 6,
        timeout=30,
        what="6 iterations completed by Node",
    )
    assert worker.terminate() == 0
    times = completed_iterations(redis_sync, queue_name, "tick")
    assert times[0] == int(first.id.rsplit(":", 1)[1])
    assert_spaced(times, EVERY)
    assert not worker.events("error"), worker.describe()
    stored = redis_sync.hgetall(f"bull:{queue_name}:repeat:tick:{times[-1]}")
    assert stored["name"] == "beat" and json.loads(stored["data"]) == {"i": 4}
    assert json.loads(stored["opts"])["repeat"]["count"] == len(times)


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_workers_advance_a_dockyard_cron_scheduler(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    worker = node("work.mjs", node_args(bullmq, redis_url, queue_name, name="node"))
    await worker.await_for(lambda line: line.get("event") == "ready", timeout=30)
    async with Queue(queue_name, url=redis_url) as queue:
        await queue.upsert_job_scheduler("cron", pattern="*/1 * * * * *", tz="Europe/Berlin")
    await poll_until(
        lambda: len(completed_iterations(redis_sync, queue_name, "cron")) >= 4,
        timeout=30,
        what="4 cron iterations completed by Node",
    )
    assert worker.terminate() == 0
    times = completed_iterations(redis_sync, queue_name, "cron")
    assert all(t % 1000 == 0 for t in times), times
    assert_spaced(times, 1000)
    assert not worker.events("error"), worker.describe()


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_and_dockyard_workers_share_a_dockyard_scheduler(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    """No iteration runs twice and none is missed, whichever side starts each one."""
    worker = node("work.mjs", node_args(bullmq, redis_url, queue_name, name="node"))
    await worker.await_for(lambda line: line.get("event") == "ready", timeout=30)
    async with (
        Queue(queue_name, url=redis_url) as queue,
        Worker(queue_name, behave, url=redis_url, name="dock"),
    ):
        await queue.upsert_job_scheduler("shared", every=EVERY / 1000)
        await poll_until(
            lambda: (
                len(completed_iterations(redis_sync, queue_name, "shared")) >= 20
                and by_worker(redis_sync, queue_name, "dock") >= 3
                and by_worker(redis_sync, queue_name, "node") >= 3
            ),
            timeout=40,
            what="20 iterations, at least 3 on each side",
        )
        assert worker.terminate() == 0
    completions = Counter(
        e["jobId"] for e in stream_events(redis_sync, queue_name) if e["event"] == "completed"
    )
    assert completions and max(completions.values()) == 1, completions
    times = completed_iterations(redis_sync, queue_name, "shared")
    assert len(times) == len(completions)
    assert_spaced(times, EVERY)
    assert not worker.events("error"), worker.describe()
