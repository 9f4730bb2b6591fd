"""Job schedulers through the public API (Queue + Worker), on every store that has them.

A scheduler's iterations are ordinary jobs with ids ``repeat:<id>:<ms>``; the next one is
made when the current one starts. After downtime a scheduler runs once, not once per
missed slot.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dockyard import (
    InvalidJobError,
    InvalidOptionError,
    Job,
    JobScheduler,
    JobStateError,
    Queue,
    Worker,
)
from dockyard import sync as dsync

from ..waiting import wait_for


@pytest.fixture
async def squeue(scheduler_backend_url: str) -> AsyncIterator[Queue]:
    async with Queue("sq", url=scheduler_backend_url) as q:
        yield q


def worker(queue: Queue, handler: Recorder) -> Worker:
    """A worker on the queue's store (its own connections)."""
    return Worker(queue.name, handler, backend=queue.backend.reopen())


def ms_of(sid: str, job_id: str) -> int:
    """The time in an iteration id ``repeat:<sid>:<ms>``; fails on any other shape."""
    head, _, ms = job_id.rpartition(":")
    assert head == f"repeat:{sid}" and ms.isdigit(), job_id
    return int(ms)


class Recorder:
    """A handler that records every run: (job id, data)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, Any]] = []

    async def __call__(self, job: Job) -> None:
        self.runs.append((job.id, job.data))

    def times(self, sid: str) -> list[int]:
        return [ms_of(sid, job_id) for job_id, _ in self.runs]


async def nothing_pending(queue: Queue) -> bool:
    counts = await queue.get_job_counts("waiting", "delayed", "prioritized", "active")
    return sum(counts.values()) == 0


async def test_an_every_scheduler_runs_iterations_with_bullmq_ids(squeue: Queue) -> None:
    first = await squeue.upsert_job_scheduler(
        "tick", every=0.5, template={"name": "beat", "data": {"n": 1}, "opts": {"attempts": 2}}
    )
    assert ms_of("tick", first.id) > 0 and first.name == "beat" and first.data == {"n": 1}
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= 4, timeout=20, what="4 iterations")
    times = rec.times("tick")
    assert times[0] == ms_of("tick", first.id)
    assert [b - a for a, b in pairwise(times)] == [500] * (len(times) - 1)
    assert all(data == {"n": 1} for _, data in rec.runs)
    done = await squeue.get_job(rec.runs[1][0])
    assert done is not None and done.name == "beat" and done.opts.attempts == 2


async def test_limit_stops_the_schedule_after_that_many_runs(squeue: Queue) -> None:
    await squeue.upsert_job_scheduler("three", every=0.2, limit=3)
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= 3, timeout=20, what="3 iterations")
        await wait_for(lambda: nothing_pending(squeue), timeout=10, what="nothing pending")
    assert len(rec.runs) == 3
    sched = await squeue.get_job_scheduler("three")
    assert sched is not None and sched.limit == 3 and sched.iteration_count == 3


async def test_end_stops_the_schedule(squeue: Queue) -> None:
    end = time.time() + 1.2
    await squeue.upsert_job_scheduler("ends", every=0.25, end=end)
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: time.time() > end + 0.6, timeout=10, what="past the end")
        await wait_for(lambda: nothing_pending(squeue), timeout=10, what="nothing pending")
    times = rec.times("ends")
    assert len(times) >= 2
    # An iteration made before the end may fall due just after it (BullMQ's rule), no later.
    assert max(times) <= end * 1000 + 250
    assert (await squeue.get_job_scheduler("ends")) is not None


async def test_upserting_again_changes_the_schedule_without_a_double_or_a_miss(
    squeue: Queue,
) -> None:
    await squeue.upsert_job_scheduler("s", every=0.5, template={"data": {"v": 1}})
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= 2, timeout=20, what="2 runs of v1")
        await squeue.upsert_job_scheduler("s", every=0.5, template={"data": {"v": 2}})
        await wait_for(
            lambda: sum(d == {"v": 2} for _, d in rec.runs) >= 2, timeout=20, what="2 runs of v2"
        )
        await squeue.upsert_job_scheduler("s", every=0.8, template={"data": {"v": 3}})
        await wait_for(
            lambda: sum(d == {"v": 3} for _, d in rec.runs) >= 3, timeout=20, what="3 runs of v3"
        )
    ids = [job_id for job_id, _ in rec.runs]
    assert len(ids) == len(set(ids))
    v12 = [ms_of("s", i) for i, d in rec.runs if d != {"v": 3}]
    v3 = [ms_of("s", i) for i, d in rec.runs if d == {"v": 3}]
    # Same interval: the new data takes the pending slot; no slot is run twice or skipped.
    assert [b - a for a, b in pairwise(v12)] == [500] * (len(v12) - 1)
    # A new interval starts afresh; nothing of the old schedule runs after it.
    assert [b - a for a, b in pairwise(v3)] == [800] * (len(v3) - 1)
    assert min(v3) > max(v12)
    sched = await squeue.get_job_scheduler("s")
    assert sched is not None and sched.every == 0.8 and sched.template["data"] == {"v": 3}


async def test_remove_deletes_the_delayed_iteration_and_leaves_a_ready_one(
    squeue: Queue,
) -> None:
    later = await squeue.upsert_job_scheduler("later", every=60, start=time.time() + 3600)
    assert await later.get_state() == "delayed"
    now = await squeue.upsert_job_scheduler("now", every=60)
    assert await now.get_state() == "waiting"
    assert await squeue.remove_job_scheduler("later") is True
    assert await squeue.remove_job_scheduler("now") is True
    assert await squeue.remove_job_scheduler("later") is False
    assert await squeue.get_job(later.id) is None
    assert await squeue.get_job_scheduler("later") is None
    assert await squeue.get_job_schedulers() == []
    # The ready one runs once; its start finds no scheduler, so nothing follows it.
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) == 1, timeout=10, what="the ready iteration")
        await wait_for(lambda: nothing_pending(squeue), timeout=10, what="nothing pending")
    assert [job_id for job_id, _ in rec.runs] == [now.id]


async def test_the_current_iteration_cannot_be_removed_while_its_scheduler_exists(
    squeue: Queue,
) -> None:
    job = await squeue.upsert_job_scheduler("keep", every=60)
    with pytest.raises(JobStateError, match="'keep'"):
        await squeue.remove(job.id)
    with pytest.raises(JobStateError, match="remove_job_scheduler"):
        await job.remove()
    assert await job.get_state() == "waiting"
    await squeue.remove_job_scheduler("keep")
    assert await squeue.remove(job.id) is True


async def test_get_and_get_all_report_each_scheduler_and_its_next_run(squeue: Queue) -> None:
    start = datetime.now(UTC) + timedelta(hours=2)
    a = await squeue.upsert_job_scheduler(
        "a", every=timedelta(minutes=5), start=start, limit=4, offset=30,
        template={"name": "job-a", "data": {"x": [1, 2]}, "opts": {"priority": 3}},
    )  # fmt: skip
    b = await squeue.upsert_job_scheduler("b", pattern="0 9 * * *", tz="America/New_York")
    got = await squeue.get_job_scheduler("a")
    assert got == JobScheduler(
        id="a",
        name="job-a",
        next_run=ms_of("a", a.id) / 1000,
        iteration_count=1,
        every=300.0,
        pattern=None,
        tz=None,
        start=round(start.timestamp() * 1000) / 1000,
        end=None,
        limit=4,
        offset=30.0,
        template={"name": "job-a", "data": {"x": [1, 2]}, "opts": {"priority": 3}},
    )
    assert got.next_run == round(start.timestamp() * 1000) / 1000
    assert got.next_run_at is not None and abs(got.next_run_at - start) < timedelta(seconds=1)
    bs = await squeue.get_job_scheduler("b")
    assert bs is not None and bs.pattern == "0 9 * * *" and bs.tz == "America/New_York"
    assert bs.next_run == ms_of("b", b.id) / 1000 and bs.every is None and bs.offset is None
    assert bs.next_run_at is not None
    local = bs.next_run_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.second) == (9, 0, 0)
    assert bs.template == {"name": "b", "data": {}, "opts": {}}
    listed = await squeue.get_job_schedulers()
    by_next = sorted([got, bs], key=lambda s: s.next_run or 0, reverse=True)
    assert [s.id for s in listed] == [s.id for s in by_next]
    assert [s.id for s in await squeue.get_job_schedulers(asc=True)] == [
        s.id for s in reversed(by_next)
    ]
    assert len(await squeue.get_job_schedulers(0, 0)) == 1
    assert await squeue.get_job_scheduler("missing") is None


async def test_a_worker_restart_loses_no_iteration(squeue: Queue) -> None:
    await squeue.upsert_job_scheduler("r", every=0.4)
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= 2, timeout=20, what="2 runs")
    pending = await squeue.get_delayed() + await squeue.get_waiting()
    assert len(pending) == 1
    seen = len(rec.runs)
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= seen + 2, timeout=20, what="2 more runs")
    ids = [job_id for job_id, _ in rec.runs]
    assert pending[0].id in ids[seen:] and len(ids) == len(set(ids))
    gaps = [b - a for a, b in pairwise(rec.times("r"))]
    assert all(g > 0 and g % 400 == 0 for g in gaps), gaps


async def test_a_cron_pattern_with_a_time_zone_runs_on_its_seconds(squeue: Queue) -> None:
    first = await squeue.upsert_job_scheduler("cron", pattern="*/1 * * * * *", tz="Asia/Kolkata")
    assert ms_of("cron", first.id) % 1000 == 0
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= 3, timeout=20, what="3 cron runs")
    times = rec.times("cron")
    assert all(t % 1000 == 0 for t in times)
    assert [b - a for a, b in pairwise(times)] == [1000] * (len(times) - 1)


async def test_immediately_runs_a_cron_schedule_now_then_on_its_pattern(squeue: Queue) -> None:
    before = time.time()
    first = await squeue.upsert_job_scheduler("yearly", pattern="0 0 1 1 *", immediately=True)
    assert ms_of("yearly", first.id) / 1000 < before + 5
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) == 1, timeout=10, what="the immediate run")
        await wait_for(
            lambda: squeue.get_job_counts("delayed"), timeout=5, what="the next iteration"
        )
    sched = await squeue.get_job_scheduler("yearly")
    assert sched is not None and sched.next_run_at is not None
    nxt = sched.next_run_at
    assert (nxt.month, nxt.day, nxt.hour, nxt.minute) == (1, 1, 0, 0)
    assert nxt.year == datetime.now(UTC).year + 1


async def test_after_downtime_missed_slots_run_once_then_the_schedule_resumes(
    squeue: Queue,
) -> None:
    """The catch-up rule: one run for all the slots missed while no worker ran."""
    await squeue.upsert_job_scheduler("catch", every=1)
    rec = Recorder()
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= 2, timeout=20, what="2 runs")
    stopped = time.time()
    seen = len(rec.runs)
    await wait_for(lambda: time.time() > stopped + 3, timeout=5, what="3 s of downtime")
    restarted_ms = time.time() * 1000
    async with worker(squeue, rec):
        await wait_for(lambda: len(rec.runs) >= seen + 3, timeout=20, what="3 runs after")
    after = rec.times("catch")[seen:]
    late = [t for t in after if t < restarted_ms]
    assert len(late) == 1  # every missed slot, run once
    assert after[1] - after[0] >= 3000 and after[1] % 1000 == after[0] % 1000
    assert after[1] > restarted_ms
    assert [b - a for a, b in pairwise(after[1:])] == [1000] * (len(after) - 2)


BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({}, InvalidOptionError, "exactly one"),
    ({"every": 1, "pattern": "* * * * *"}, InvalidOptionError, "exactly one"),
    ({"pattern": "61 * * * *"}, InvalidOptionError, "cron"),
    ({"pattern": "* * * *"}, InvalidOptionError, "cron"),
    ({"pattern": "0 0 30 2 *"}, InvalidOptionError, "never occurs"),
    # (end is computed at collection: an hour ahead stays ahead however long the suite runs
    # before this test; 29 February never falls within that hour but once in four years)
    ({"pattern": "0 0 29 2 *", "end": time.time() + 3600}, InvalidOptionError, "before end"),
    ({"pattern": "* * * * *", "tz": "Mars/Olympus"}, InvalidOptionError, "Mars"),
    ({"every": 1, "tz": "UTC"}, InvalidOptionError, "tz"),
    ({"every": 1, "immediately": True}, InvalidOptionError, "immediately"),
    ({"pattern": "* * * * *", "immediately": True, "start": 2e9}, InvalidOptionError, "start"),
    ({"every": 1, "end": 1_000_000}, InvalidOptionError, "past"),
    ({"every": 1, "start": 2e9, "end": 1.9e9}, InvalidOptionError, "before end"),
    ({"every": 1, "limit": 0}, InvalidOptionError, "limit"),
    ({"every": 1, "limit": True}, InvalidOptionError, "limit"),
    ({"every": 0}, InvalidOptionError, "every"),
    ({"every": -1}, InvalidOptionError, "every"),
    ({"every": 0.0001}, InvalidOptionError, "1 ms"),
    ({"every": float("nan")}, InvalidOptionError, "every"),
    ({"every": "1"}, InvalidOptionError, "every"),
    ({"every": 1, "offset": 1}, InvalidOptionError, "offset"),
    ({"pattern": "* * * * *", "offset": 1}, InvalidOptionError, "offset"),
    ({"every": 1, "start": datetime(2030, 1, 1)}, InvalidOptionError, "naive"),
    ({"every": 1, "template": {"opts": {"job_id": "x"}}}, InvalidOptionError, "job_id"),
    ({"every": 1, "template": {"opts": {"delay": 5}}}, InvalidOptionError, "delay"),
    ({"every": 1, "template": {"opts": {"repeat": {}}}}, InvalidOptionError, "repeat"),
    (
        {"every": 1, "template": {"opts": {"deduplication": {"id": "d"}}}},
        InvalidOptionError,
        "deduplication",
    ),
    ({"every": 1, "template": {"opts": {"attempts": 0}}}, InvalidOptionError, "attempts"),
    ({"every": 1, "template": {"opts": {"color": 1}}}, InvalidOptionError, "unknown"),
    ({"every": 1, "template": {"nom": "x"}}, InvalidOptionError, "template"),
    ({"every": 1, "template": {"name": ""}}, InvalidJobError, "name"),
    ({"every": 1, "template": {"name": "a\udce9"}}, InvalidJobError, "surrogate"),
    ({"every": 1, "template": {"data": {1: 2}}}, InvalidJobError, "data"),
    ({"every": 1, "template": {"data": float("inf")}}, InvalidJobError, "data"),
]


@pytest.mark.parametrize(("args", "error", "words"), BAD)
async def test_bad_scheduler_input_is_refused_and_writes_nothing(
    squeue: Queue, args: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        await squeue.upsert_job_scheduler("bad", **args)
    assert await squeue.get_job_schedulers() == []
    assert sum((await squeue.get_job_counts()).values()) == 0


@pytest.mark.parametrize("sid", ["", "a:b", "a:b:c:d:e", "x\udce9", 7, None])
async def test_bad_scheduler_ids_are_refused(squeue: Queue, sid: Any) -> None:
    with pytest.raises(InvalidOptionError):
        await squeue.upsert_job_scheduler(sid, every=1)
    assert await squeue.get_job_schedulers() == []


def test_the_blocking_queue_manages_schedulers(scheduler_backend_url: str) -> None:
    with dsync.Queue("sync-sq", url=scheduler_backend_url) as q:
        job = q.upsert_job_scheduler("s", every=30, start=time.time() + 60)
        sched = q.get_job_scheduler("s")
        assert sched is not None and sched.next_run == ms_of("s", job.id) / 1000
        assert [s.id for s in q.get_job_schedulers()] == ["s"]
        assert q.remove_job_scheduler("s") is True
        assert q.get_job_scheduler("s") is None


_WHEN = st.one_of(
    st.none(),
    st.floats(-1e10, 3e9),
    st.just(float("nan")),
    st.integers(-10, 2**40),
    st.just(float("inf")),
    st.datetimes(timezones=st.none() | st.just(UTC)),
)
_DURATION = st.one_of(
    st.none(),
    st.floats(-5, 1e9),
    st.just(float("nan")),
    st.integers(-3, 10**6),
    st.timedeltas(min_value=timedelta(seconds=-5), max_value=timedelta(days=9000)),
    st.text(max_size=3),
)
_ARGS = st.fixed_dictionaries(
    {},
    optional={
        "every": _DURATION,
        "pattern": st.one_of(
            st.sampled_from(["* * * * *", "*/5 * * * * *", "0 9 * * 1-5", "@daily", "0 0 31 4 *",
                             "60 * * * *", "* * *", "0 0 1 1 *", "L * * *", ""]),
            st.text(max_size=12),
        ),
        "tz": st.one_of(st.none(), st.sampled_from(["UTC", "Europe/Paris", "Nowhere/City", ""])),
        "start": _WHEN,
        "end": _WHEN,
        "limit": st.one_of(st.none(), st.integers(-2, 5), st.booleans(), st.floats(0, 3)),
        "immediately": st.one_of(st.booleans(), st.none(), st.integers(0, 1)),
        "offset": _DURATION,
        "template": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.one_of(st.text(max_size=5), st.integers()),
                    "data": st.one_of(st.dictionaries(st.text(max_size=3), st.integers()),
                                      st.floats()),
                    "opts": st.dictionaries(
                        st.sampled_from(["attempts", "priority", "job_id", "delay",
                                         "lifo", "repeat", "timeout"]),
                        st.integers(-1, 3),
                        max_size=2,
                    ),
                },
            ),
        ),
    },
)  # fmt: skip


_SOON = st.floats(0, 86_400 * 30).map(lambda d: time.time() + d)
#: Arguments most of which a user would expect to work, so both outcomes are explored.
_PLAUSIBLE = st.one_of(
    st.fixed_dictionaries(
        {"every": st.floats(0.0005, 1e5)},
        optional={"offset": st.floats(0, 50), "start": _SOON, "limit": st.integers(0, 5)},
    ),
    st.fixed_dictionaries(
        {
            "pattern": st.sampled_from(
                [
                    "* * * * *",
                    "*/7 * * * * *",
                    "0 9 * * 1-5",
                    "@hourly",
                    "0 0 29 2 *",
                    "5 4 * * SUN",
                ]
            )
        },
        optional={
            "tz": st.sampled_from(["UTC", "Asia/Tokyo", "America/Denver"]),
            "end": _SOON,
            "limit": st.integers(0, 5),
            "immediately": st.booleans(),
        },
    ),
).map(lambda a: {**a, "template": {"data": {"k": 1}, "opts": {"attempts": 2}}})


@settings(
    max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sid=st.one_of(st.text("ab-_. é7", min_size=1, max_size=6), st.text(max_size=6), st.just("a:b")),
    args=_ARGS | _PLAUSIBLE,
)
def test_any_upsert_is_stored_as_given_or_refused_with_nothing_written(
    scheduler_backend_url: str, sid: str, args: dict[str, Any]
) -> None:
    """Whatever combination of arguments a user passes, the upsert either makes a scheduler
    that reads back as given with one pending iteration, or is refused with a typed error
    and leaves the store empty."""

    async def main() -> None:
        async with Queue(f"hz-{uuid.uuid4().hex[:10]}", url=scheduler_backend_url) as q:
            try:
                job = await q.upsert_job_scheduler(sid, **args)
            except (InvalidOptionError, InvalidJobError):
                event("refused")
                assert await q.get_job_schedulers() == []
                assert sum((await q.get_job_counts()).values()) == 0
                return
            event("stored")
            got = await q.get_job_scheduler(sid)
            assert got is not None and got.iteration_count == 1
            assert (got.every is None) == (args.get("every") is None)
            assert got.pattern == args.get("pattern")
            assert got.tz == args.get("tz") and got.limit == args.get("limit")
            assert got.next_run == ms_of(sid, job.id) / 1000
            if got.end is not None:
                assert got.end > time.time() - 5 and (got.next_run or 0) <= got.end + (
                    got.every or 0
                )
            counts = await q.get_job_counts()
            assert sum(counts.values()) == 1
            assert await q.remove_job_scheduler(sid) is True

    asyncio.run(main())


async def test_drain_and_clean_leave_a_schedulers_current_iteration(squeue: Queue) -> None:
    """Deleting the current iteration would end its schedule (the next one is made when it
    starts), so drain and clean pass over it, as BullMQ's do; other jobs go."""
    ready = await squeue.upsert_job_scheduler("now", every=3600)  # first slot: now
    later = await squeue.upsert_job_scheduler(
        "later", every=3600, start=time.time() + 3000
    )  # delayed
    other = await squeue.add("plain", {})
    assert await squeue.drain(delayed=True) == 1
    assert await squeue.get_job(other.id) is None
    for state in ("waiting", "delayed"):
        assert await squeue.clean(0, limit=0, state=state) == []
    assert await ready.get_state() == "waiting" and await later.get_state() == "delayed"
    rec = Recorder()
    async with worker(squeue, rec):  # the kept ready iteration still runs
        await wait_for(lambda: ready.id in [job_id for job_id, _ in rec.runs], timeout=20,
                       what="the kept iteration to run")  # fmt: skip
