"""Node BullMQ job schedulers advanced by dockyard workers (Redis).

Node creates a scheduler's next iteration when a worker *starts* the current one; a dockyard
worker must do the same, or the schedule stops for good after one iteration.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest

import redis
from dockyard import Job, Worker
from dockyard.backends.redis.backend import RedisBackend

from .node_harness import arun_node
from .support import BULLMQ_VERSIONS, behave, node_args, poll_until, stream_events

pytestmark = pytest.mark.interop

EVERY = 250


async def scheduler_call(
    bullmq: str, redis_url: str, queue: str, action: str, **extra: Any
) -> dict[str, Any]:
    """One scheduler.mjs call (upsert, get, remove, list); its result line."""
    lines = await arun_node(
        "scheduler.mjs", node_args(bullmq, redis_url, queue, action=action, **extra)
    )
    return next(line for line in lines if line.get("event") == "done")


def iteration_ms(sid: str, job_id: str) -> int:
    """The time in an iteration id ``repeat:<sid>:<ms>``; fails on any other shape."""
    head, _, ms = job_id.rpartition(":")
    assert head == f"repeat:{sid}", job_id
    assert ms.isdigit(), job_id
    return int(ms)


def completed_iterations(r: redis.Redis, queue: str, sid: str) -> list[int]:
    """The times of the scheduler's completed iterations, in order."""
    ids = r.zrange(f"bull:{queue}:completed", 0, -1)
    return sorted(iteration_ms(sid, i) for i in ids)


def assert_spaced(times: list[int], every: int) -> None:
    """Consecutive iterations are exactly ``every`` apart: none missed, none twice."""
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps and all(g == every for g in gaps), gaps


def ic(r: redis.Redis, queue: str, sid: str) -> int:
    return int(r.hget(f"bull:{queue}:repeat:{sid}", "ic") or 0)


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_dockyard_worker_keeps_a_node_every_scheduler_going(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    """An ``every: 250`` scheduler upserted by Node and advanced only by dockyard keeps
    producing iterations (it used to stop after the first one)."""
    sid = "tick"
    made = await scheduler_call(
        bullmq, redis_url, queue_name, "upsert", id=sid, repeat={"every": EVERY},
        template={"name": "tick-job", "data": {"i": 7}},
    )  # fmt: skip
    assert made["job"]["id"].startswith(f"repeat:{sid}:")
    seen: list[Job] = []

    async def handler(job: Job) -> Any:
        seen.append(job)
        return await behave(job)

    async with Worker(queue_name, handler, url=redis_url, name="dock"):
        await poll_until(
            lambda: len(completed_iterations(redis_sync, queue_name, sid)) >= 8,
            timeout=30,
            what="8 iterations completed by dockyard",
        )
        ic_before = ic(redis_sync, queue_name, sid)

        async def next_in_future() -> bool:
            got = await scheduler_call(bullmq, redis_url, queue_name, "get", id=sid)
            sched = got["scheduler"]
            ahead = sched and sched["next"] > got["now"]
            return bool(ahead and sched["iterationCount"] > ic_before)

        await poll_until(next_in_future, timeout=15, what="Node sees the next run ahead")
    times = completed_iterations(redis_sync, queue_name, sid)
    assert_spaced(times, EVERY)
    assert ic(redis_sync, queue_name, sid) >= len(times) + 1
    assert all(job.name == "tick-job" and job.data == {"i": 7} for job in seen)
    assert all(job.repeat_job_key == sid for job in seen)
    # The iterations dockyard created read back in Node as a scheduler's jobs.
    last = f"repeat:{sid}:{times[-1]}"
    lines = await arun_node("inspect.mjs", node_args(bullmq, redis_url, queue_name, ids=[last]))
    job = next(line for line in lines if line["event"] == "job")
    assert job["state"] == "completed"
    assert job["opts"]["repeat"]["every"] == EVERY
    assert job["opts"]["repeat"]["count"] == len(times)
    assert job["opts"]["jobId"] == last
    stored = redis_sync.hgetall(f"bull:{queue_name}:{last}")
    assert stored["rjk"] == sid
    assert json.loads(stored["opts"])["repeatJobKey"] == sid


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_limited_node_scheduler_stops_after_its_limit_under_dockyard(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    """``limit: 3`` gives exactly three iterations, then nothing more is created."""
    sid = "three"
    await scheduler_call(
        bullmq, redis_url, queue_name, "upsert", id=sid, repeat={"every": EVERY, "limit": 3}
    )
    async with Worker(queue_name, behave, url=redis_url):
        await poll_until(
            lambda: len(completed_iterations(redis_sync, queue_name, sid)) >= 3,
            timeout=20,
            what="3 iterations completed",
        )
    times = completed_iterations(redis_sync, queue_name, sid)
    assert len(times) == 3
    assert_spaced(times, EVERY)
    # The next iteration would have been created when the third started: there is none.
    q = f"bull:{queue_name}"
    assert redis_sync.zcard(f"{q}:delayed") == 0 and redis_sync.llen(f"{q}:wait") == 0
    assert redis_sync.zscore(f"{q}:repeat", sid) == times[-1]
    assert ic(redis_sync, queue_name, sid) == 3


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_and_dockyard_workers_share_a_scheduler_without_gaps_or_repeats(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    """Node and dockyard workers on one ``every`` scheduler for a few seconds: each
    iteration runs once, and consecutive iterations are ``every`` apart."""
    sid = "shared"
    worker = node("work.mjs", node_args(bullmq, redis_url, queue_name, name="node"))
    await worker.await_for(lambda line: line.get("event") == "ready", timeout=30)
    q = f"bull:{queue_name}"

    def by(who: str) -> int:
        ids = redis_sync.zrange(f"{q}:completed", 0, -1)
        return sum(1 for i in ids if redis_sync.hget(f"{q}:{i}", "pb") == who)

    async with Worker(queue_name, behave, url=redis_url, name="dock"):
        # Both workers wait before the first iteration exists: a late first start would
        # (rightly) skip the slots it missed.
        await scheduler_call(
            bullmq, redis_url, queue_name, "upsert", id=sid, repeat={"every": EVERY}
        )
        await poll_until(
            lambda: (
                len(completed_iterations(redis_sync, queue_name, sid)) >= 20
                and by("dock") >= 3
                and by("node") >= 3
            ),
            timeout=40,
            what="20 iterations, at least 3 on each side",
        )
        assert worker.terminate() == 0
    completions = Counter(
        e["jobId"] for e in stream_events(redis_sync, queue_name) if e["event"] == "completed"
    )
    assert completions and max(completions.values()) == 1, completions
    times = completed_iterations(redis_sync, queue_name, sid)
    assert len(times) == len(completions)
    assert_spaced(times, EVERY)
    assert not [e for e in worker.events("error")], worker.describe()


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_removed_node_scheduler_is_not_advanced_by_dockyard(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    """An iteration left in wait after Node's removeJobScheduler runs once; its start
    creates nothing, so the scheduler stays gone."""
    sid = "gone"
    made = await scheduler_call(
        bullmq, redis_url, queue_name, "upsert", id=sid, repeat={"every": EVERY}
    )
    first = made["job"]["id"]
    removed = await scheduler_call(bullmq, redis_url, queue_name, "remove", id=sid)
    assert removed["scheduler"] is None
    q = f"bull:{queue_name}"
    assert redis_sync.lrange(f"{q}:wait", 0, -1) == [first]
    async with Worker(queue_name, behave, url=redis_url):
        await poll_until(
            lambda: redis_sync.zscore(f"{q}:completed", first) is not None,
            timeout=20,
            what="the left-over iteration completed",
        )
    assert redis_sync.zrange(f"{q}:completed", 0, -1) == [first]
    assert redis_sync.zcard(f"{q}:delayed") == 0 and redis_sync.llen(f"{q}:wait") == 0
    assert redis_sync.exists(f"{q}:repeat", f"{q}:repeat:{sid}") == 0
    added = [e["jobId"] for e in stream_events(redis_sync, queue_name) if e["event"] == "added"]
    assert added == [first]


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_advancing_twice_from_the_same_iteration_creates_one_next_iteration(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    """A retried or stall-requeued iteration starts again: the second advancement is a
    no-op (the scheduler already points past it), and an existing next id is reported."""
    sid = "once"
    made = await scheduler_call(
        bullmq, redis_url, queue_name, "upsert", id=sid, repeat={"every": 60_000}
    )
    first = made["job"]["id"]
    backend = RedisBackend(redis_url, queue_name)
    try:
        job = await backend.get_job(first)
        assert job is not None and job.repeat_job_key == sid
        now = iteration_ms(sid, first) + 10
        reply = await backend.scripts.advance_job_scheduler(sid, first, now, 2, None)
        second = f"repeat:{sid}:{iteration_ms(sid, first) + 60_000}"
        assert reply == second.encode()
        assert await backend.scripts.advance_job_scheduler(sid, first, now, 2, None) == 1
        assert await backend.get_state(second) == "delayed"
    finally:
        await backend.close()
    got = await scheduler_call(bullmq, redis_url, queue_name, "get", id=sid)
    assert got["scheduler"]["next"] == iteration_ms(sid, second)
    assert got["scheduler"]["iterationCount"] == 2
    nrjid = redis_sync.hget(f"bull:{queue_name}:{first}", "nrjid")
    assert nrjid == (second if bullmq == "5" else None)


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_iterations_taken_by_fetch_next_advance_the_scheduler_too(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    """Each iteration runs longer than ``every``, so the next one is due when it finishes
    and comes back from the finishing call (fetch-next), never from a plain fetch: the
    schedule goes on only if that path advances it as well. Missed slots are skipped."""
    sid = "slow"
    await scheduler_call(
        bullmq, redis_url, queue_name, "upsert", id=sid, repeat={"every": EVERY},
        template={"data": {"behaviour": "sleep", "ms": 2 * EVERY}},
    )  # fmt: skip
    async with Worker(queue_name, behave, url=redis_url):
        await poll_until(
            lambda: len(completed_iterations(redis_sync, queue_name, sid)) >= 5,
            timeout=30,
            what="5 slow iterations completed",
        )
    times = completed_iterations(redis_sync, queue_name, sid)
    gaps = [b - a for a, b in pairwise(times)]
    assert all(g > 0 and g % EVERY == 0 for g in gaps), gaps


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_dockyard_worker_keeps_a_node_cron_scheduler_going(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    """A Node ``pattern`` scheduler (every second, seconds field first) advanced only by
    dockyard: iterations on whole seconds, one second apart, each recording its own time
    as ``prevMillis`` the way Node's worker reads it back."""
    sid = "cron"
    await scheduler_call(
        bullmq, redis_url, queue_name, "upsert", id=sid,
        repeat={"pattern": "*/1 * * * * *", "tz": "Europe/Berlin"},
    )  # fmt: skip
    async with Worker(queue_name, behave, url=redis_url):
        await poll_until(
            lambda: len(completed_iterations(redis_sync, queue_name, sid)) >= 4,
            timeout=30,
            what="4 cron iterations completed",
        )
    times = completed_iterations(redis_sync, queue_name, sid)
    assert all(t % 1000 == 0 for t in times), times
    assert_spaced(times, 1000)
    for t in times:
        opts = json.loads(redis_sync.hget(f"bull:{queue_name}:repeat:{sid}:{t}", "opts") or "")
        assert opts["prevMillis"] == t
        assert opts["repeat"]["pattern"] == "*/1 * * * * *"
    got = await scheduler_call(bullmq, redis_url, queue_name, "get", id=sid)
    assert got["scheduler"]["next"] == times[-1] + 1000
    assert got["scheduler"]["iterationCount"] == len(times) + 1
