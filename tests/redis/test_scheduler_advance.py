"""advanceJobScheduler and the client-side checks, on keys laid out as Node BullMQ writes a
job scheduler (B.1 of bullmq-flows-schedulers.md), with chosen clocks."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

import redis
from dockyard import Job, Worker
from dockyard.backends.redis.backend import RedisBackend
from dockyard.backends.redis.schedulers import NextIteration, plan_next

from .conftest import events, wait_for

Q = "bull:q"
T0 = 1_800_000_000_000  # a ms time well ahead of any test run's clock


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    b = RedisBackend(redis_url, "q")
    yield b
    await b.close()


def lay_scheduler(
    r: redis.Redis,
    sid: str,
    prev: int,
    *,
    every: int | None = 1000,
    offset: int = 0,
    data: str | None = '{"n":1}',
    ic: bool = True,
    job_opts: dict[str, Any] | None = None,
    version: str | None = None,
) -> str:
    """A scheduler whose current iteration ``repeat:<sid>:<prev>`` exists (as Node's
    upsert leaves it); the iteration's id."""
    r.zadd(f"{Q}:repeat", {sid: prev})
    fields: dict[str, Any] = {"name": "tpl", "offset": offset}
    if every is not None:
        fields["every"] = every
    if data is not None:
        fields["data"] = data
    if ic:
        fields["ic"] = 1
    r.hset(f"{Q}:repeat:{sid}", mapping=fields)
    job_id = f"repeat:{sid}:{prev}"
    repeat = {"every": every, "count": 1} if every is not None else {"count": 1}
    opts = job_opts if job_opts is not None else {"attempts": 2, "repeat": repeat}
    r.hset(
        f"{Q}:{job_id}",
        mapping={"name": "tpl", "data": '{"job":true}', "opts": json.dumps(opts),
                 "timestamp": prev, "delay": 0, "priority": 0, "rjk": sid},
    )  # fmt: skip
    if version:
        r.hset(f"{Q}:meta", "version", version)
    return job_id


async def test_on_time_the_next_iteration_is_one_interval_later_and_delayed(
    backend: RedisBackend, redis_sync: redis.Redis
) -> None:
    first = lay_scheduler(redis_sync, "s", T0)
    reply = await backend.scripts.advance_job_scheduler("s", first, T0 + 10, 2, None)
    nxt = f"repeat:s:{T0 + 1000}"
    assert reply == nxt.encode()
    assert redis_sync.zscore(f"{Q}:repeat", "s") == T0 + 1000
    assert redis_sync.hget(f"{Q}:repeat:s", "ic") == "2"
    assert redis_sync.zscore(f"{Q}:delayed", nxt) == (T0 + 1000) * 4096
    stored = redis_sync.hgetall(f"{Q}:{nxt}")
    assert stored["rjk"] == "s" and stored["name"] == "tpl" and stored["data"] == '{"n":1}'
    assert stored["delay"] == "990" and stored["timestamp"] == str(T0 + 10)
    opts = json.loads(stored["opts"])
    assert opts == {
        "attempts": 2, "repeat": {"every": 1000, "count": 2}, "jobId": nxt, "delay": 990,
        "timestamp": T0 + 10, "repeatJobKey": "s",
    }  # fmt: skip
    assert redis_sync.get(f"{Q}:id") == "1"
    added = [e for e in events(redis_sync) if e["event"] in ("added", "delayed")]
    assert added == [
        {"event": "added", "jobId": nxt, "name": "tpl"},
        {"event": "delayed", "jobId": nxt, "delay": str(T0 + 1000)},
    ]
    assert redis_sync.zscore(f"{Q}:marker", "1") == T0 + 1000


async def test_after_a_gap_missed_slots_are_skipped_keeping_the_phase(
    backend: RedisBackend, redis_sync: redis.Redis
) -> None:
    """BullMQ 5.80.2+/6.x: the first slot of phase ``offset`` after now; none back-filled."""
    first = lay_scheduler(redis_sync, "s", T0 + 300, offset=300)
    now = T0 + 5_700
    reply = await backend.scripts.advance_job_scheduler("s", first, now, 2, None)
    assert reply == f"repeat:s:{T0 + 6_300}".encode()
    redis_sync.delete(f"{Q}:repeat:s:{T0 + 6_300}")
    redis_sync.zadd(f"{Q}:repeat", {"s": T0 + 300})
    # Exactly on a slot that is now: the next one.
    reply = await backend.scripts.advance_job_scheduler("s", first, T0 + 6_300 + 1, 2, None)
    assert reply == f"repeat:s:{T0 + 7_300}".encode()


async def test_a_due_iteration_is_enqueued_ready_with_priority_or_in_the_5x_paused_list(
    backend: RedisBackend, redis_sync: redis.Redis
) -> None:
    first = lay_scheduler(redis_sync, "p", T0, job_opts={"priority": 3, "repeat": {}})
    reply = await backend.scripts.advance_job_scheduler("p", first, T0 + 1000, 2, None)
    assert redis_sync.zrange(f"{Q}:prioritized", 0, -1) == [reply.decode()]
    assert redis_sync.hget(f"{Q}:{reply.decode()}", "priority") == "3"
    assert redis_sync.zscore(f"{Q}:marker", "0") == 0
    redis_sync.delete(f"{Q}:marker")
    redis_sync.hset(f"{Q}:meta", "paused", "1")
    second = lay_scheduler(redis_sync, "w", T0)
    reply = await backend.scripts.advance_job_scheduler("w", second, T0 + 1000, 2, None)
    assert redis_sync.lrange(f"{Q}:paused", 0, -1) == [reply.decode()]
    assert redis_sync.zscore(f"{Q}:marker", "0") is None
    assert events(redis_sync)[-1] == {"event": "waiting", "jobId": reply.decode()}


@pytest.mark.parametrize("version", ["bullmq:5.62.0", "bullmq:6.7.0"])
async def test_template_data_and_nrjid_follow_the_queue_generation(
    backend: RedisBackend, redis_sync: redis.Redis, version: str
) -> None:
    """No template data: 5.x takes the started job's data (and keeps it in the scheduler)
    and records ``nrjid`` on it; 6.x uses ``{}`` and writes no ``nrjid``."""
    first = lay_scheduler(redis_sync, "s", T0, data=None, version=version)
    reply = await backend.scripts.advance_job_scheduler("s", first, T0 + 10, 2, None)
    nxt = reply.decode()
    v5 = version.startswith("bullmq:5")
    assert redis_sync.hget(f"{Q}:{nxt}", "data") == ('{"job":true}' if v5 else "{}")
    assert redis_sync.hget(f"{Q}:repeat:s", "data") == ('{"job":true}' if v5 else None)
    assert redis_sync.hget(f"{Q}:{first}", "nrjid") == (nxt if v5 else None)


async def test_a_cron_iteration_takes_the_client_time_and_records_prev_millis(
    backend: RedisBackend, redis_sync: redis.Redis
) -> None:
    opts = {"repeat": {"pattern": "0 * * * * *", "count": 4}, "prevMillis": T0}
    first = lay_scheduler(redis_sync, "c", T0, every=None, job_opts=opts)
    reply = await backend.scripts.advance_job_scheduler("c", first, T0 + 5, 5, T0 + 60_000)
    nxt = f"repeat:c:{T0 + 60_000}"
    assert reply == nxt.encode()
    stored = json.loads(redis_sync.hget(f"{Q}:{nxt}", "opts") or "")
    assert stored["prevMillis"] == T0 + 60_000 and stored["repeat"]["count"] == 5
    assert stored["repeat"]["pattern"] == "0 * * * * *"
    # Without a client time (and no interval) nothing can be made.
    redis_sync.zadd(f"{Q}:repeat", {"c": T0})
    assert await backend.scripts.advance_job_scheduler("c", first, T0 + 5, 5, None) == 3


async def test_no_iteration_is_made_for_a_gone_scheduler_a_stale_job_or_an_existing_next(
    backend: RedisBackend, redis_sync: redis.Redis
) -> None:
    first = lay_scheduler(redis_sync, "s", T0)
    assert await backend.scripts.advance_job_scheduler("x", first, T0 + 10, 2, None) == 0
    stale = f"repeat:s:{T0 - 1000}"
    assert await backend.scripts.advance_job_scheduler("s", stale, T0 + 10, 2, None) == 1
    redis_sync.hset(f"{Q}:repeat:s:{T0 + 1000}", "name", "already there")
    assert await backend.scripts.advance_job_scheduler("s", first, T0 + 10, 2, None) == 2
    assert events(redis_sync)[-1] == {"event": "duplicated", "jobId": f"repeat:s:{T0 + 1000}"}
    assert redis_sync.zscore(f"{Q}:repeat", "s") == T0
    assert redis_sync.hget(f"{Q}:repeat:s", "ic") == "1"


async def test_a_legacy_colon_key_without_an_iteration_count_is_left_alone(
    backend: RedisBackend, redis_sync: redis.Redis
) -> None:
    """5.62's raw ``name:id:endDate:tz:pattern`` repeat keys are not job schedulers; an id
    with as many colons but an ``ic`` is one (BullMQ 6.x's rule)."""
    legacy = "nm::::*/5 * * * *"
    job = lay_scheduler(redis_sync, legacy, T0, ic=False)
    assert await backend.scripts.advance_job_scheduler(legacy, job, T0 + 10, 2, None) == 4
    colons = "a:b:c:d:e"
    job = lay_scheduler(redis_sync, colons, T0)
    reply = await backend.scripts.advance_job_scheduler(colons, job, T0 + 10, 2, None)
    assert reply == f"repeat:{colons}:{T0 + 1000}".encode()


def test_client_checks_stop_at_the_limit_and_after_the_end_date() -> None:
    now = T0
    assert plan_next({"repeat": {"every": 5, "count": 2, "limit": 3}}, now) == NextIteration(
        iteration=3, next_ms=None
    )
    assert plan_next({"repeat": {"every": 5, "count": 3, "limit": 3}}, now) is None
    assert plan_next({"repeat": {"every": 5, "endDate": now - 1}}, now) is None
    assert plan_next({"repeat": {"every": 5, "endDate": now + 1}}, now) == NextIteration(
        iteration=1, next_ms=None
    )
    assert plan_next({}, now) == NextIteration(iteration=1, next_ms=None)


def test_client_cron_time_follows_prev_millis_start_date_end_date_and_zone() -> None:
    """B.3/B.9 step 1: cron next strictly after max(now, prevMillis, startDate), in ``tz``;
    none past ``endDate`` (T0 is 2027-01-15T08:00:00Z, a whole minute)."""
    minute = {"pattern": "0 * * * * *", "count": 1}
    assert plan_next({"repeat": minute}, T0 + 500) == NextIteration(
        iteration=2, next_ms=T0 + 60_000
    )
    ahead = {"repeat": minute, "prevMillis": T0 + 60_000}
    assert plan_next(ahead, T0 + 500) == NextIteration(iteration=2, next_ms=T0 + 120_000)
    later = {"repeat": {**minute, "startDate": T0 + 600_000}}
    assert plan_next(later, T0) == NextIteration(iteration=2, next_ms=T0 + 660_000)
    assert plan_next({"repeat": {**minute, "endDate": T0 + 30_000}}, T0) is None
    berlin = {"repeat": {"pattern": "0 0 3 * * *", "tz": "Europe/Berlin", "count": 1}}
    # 03:00 in Berlin (CET, UTC+1) on 2027-01-16 is 02:00Z.
    assert plan_next(berlin, T0) == NextIteration(iteration=2, next_ms=T0 + 18 * 3_600_000)


ODD = [None, True, "soon", "12", -1, 2.5, [], {"a": 1}, float("inf")]


@pytest.mark.parametrize("key", ["every", "count", "limit", "endDate", "startDate", "tz"])
@pytest.mark.parametrize("value", ODD)
def test_client_checks_take_odd_stored_interval_options_without_raising(
    key: str, value: Any
) -> None:
    """Options come from any producer's stored JSON: odd values never crash a worker."""
    plan = plan_next({"repeat": {key: value}}, T0)
    assert plan is None or plan.next_ms is None


async def test_a_scheduler_that_cannot_advance_is_logged_and_its_job_still_runs(
    redis_url: str, redis_sync: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Failing to make the next iteration (here a cron pattern no engine reads) is an error
    naming the scheduler; the fetched iteration runs anyway (BullMQ 6.x would drop it)."""
    opts = {"repeat": {"pattern": "not a cron", "count": 1}}
    first = lay_scheduler(redis_sync, "bad", T0, every=None, job_opts=opts)
    redis_sync.lpush(f"{Q}:wait", first)
    ran: list[str] = []

    async def handler(job: Job) -> str:
        ran.append(job.id)
        return "ran"

    with caplog.at_level(logging.ERROR, logger="dockyard.worker"):
        async with Worker("q", handler, url=redis_url):
            await wait_for(lambda: redis_sync.zscore(f"{Q}:completed", first) is not None)
    assert ran == [first]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("job scheduler 'bad'" in m and first in m for m in errors), errors
    assert redis_sync.zscore(f"{Q}:repeat", "bad") == T0
