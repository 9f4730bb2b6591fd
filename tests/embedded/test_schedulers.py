"""Job schedulers on the SQLite and memory stores behave as on Redis (store level:
``backend.schedulers``; BullMQ's rules in bullmq-flows-schedulers.md B.2-B.6)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any

import pytest

from dockyard import Job, Queue, Worker
from dockyard.backends import open_backend
from dockyard.backends.base import Backend
from dockyard.backends.schedulerstore import SchedulerSpec, SchedulerStore
from dockyard.cron import CronPattern
from dockyard.errors import ScriptCode

from ..waiting import wait_for


def spec(
    sid: str,
    *,
    every_ms: int | None = None,
    pattern: str | None = None,
    tz: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int | None = None,
    offset_ms: int | None = None,
    immediately: bool = False,
    name: str = "tick",
    data: Any = None,
    opts: dict[str, Any] | None = None,
) -> SchedulerSpec:
    return SchedulerSpec(
        scheduler_id=sid,
        every_ms=every_ms,
        pattern=pattern,
        tz=tz,
        start_ms=start_ms,
        end_ms=end_ms,
        limit=limit,
        offset_ms=offset_ms,
        immediately=immediately,
        name=name,
        data=json.dumps({} if data is None else data),
        opts=json.dumps({"attempts": 1} if opts is None else opts),
    )


def schedulers(backend: Backend) -> SchedulerStore:
    store: SchedulerStore = backend.schedulers  # type: ignore[attr-defined]
    return store


def now_ms() -> int:
    return int(time.time() * 1000)


def millis(job_id: str, sid: str) -> int:
    prefix = f"repeat:{sid}:"
    assert job_id.startswith(prefix), job_id
    return int(job_id[len(prefix) :])


async def iteration_ids(backend: Backend, sid: str, states: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for state in states:
        found += await backend.get_job_ids(state, 0, -1, True)
    return [i for i in found if i.startswith(f"repeat:{sid}:")]


PENDING = ("waiting", "delayed", "prioritized", "paused")


class Recorder:
    """A handler that records the jobs it ran (id, data, name, processed time)."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def __call__(self, job: Job) -> None:
        self.jobs.append(job)

    @property
    def ids(self) -> list[str]:
        return [job.id for job in self.jobs]


async def test_every_iterations_run_on_a_worker_with_bullmq_ids(url: str, backend: Backend) -> None:
    now = now_ms()
    first = await schedulers(backend).upsert_scheduler(
        spec("tick", every_ms=300, data={"n": 1}, name="beat"), None, now
    )
    assert first == f"repeat:tick:{now}"  # first slot: now (no start, no offset)
    ran = Recorder()
    async with Worker("q", ran, url=url, drain_delay=0.2):
        await wait_for(lambda: len(ran.jobs) >= 3, timeout=20, what="three iterations")
    slots = [millis(i, "tick") for i in ran.ids]
    assert slots[0] == now
    assert all(b > a and (b - a) % 300 == 0 for a, b in itertools.pairwise(slots))
    assert all(job.name == "beat" and job.data == {"n": 1} for job in ran.jobs)
    assert all(job.repeat_job_key == "tick" for job in ran.jobs)
    assert len(set(ran.ids)) == len(ran.ids)
    info = await schedulers(backend).get_scheduler("tick")
    assert info is not None
    # ic: 1 at creation, +1 per iteration made since (each started one made the next).
    assert info.iteration_count >= len(ran.jobs) + 1
    assert info.next_ms is not None and info.next_ms > slots[-1]


async def test_a_limit_stops_the_scheduler_after_that_many_iterations(
    url: str, backend: Backend
) -> None:
    await schedulers(backend).upsert_scheduler(spec("lim", every_ms=100, limit=3), None, now_ms())
    ran = Recorder()
    async with Worker("q", ran, url=url, drain_delay=0.2):
        await wait_for(lambda: len(ran.jobs) == 3, timeout=20, what="three iterations")
        # The third one's start made no fourth: nothing is pending any more.
        assert await iteration_ids(backend, "lim", PENDING) == []
    info = await schedulers(backend).get_scheduler("lim")
    assert info is not None and info.iteration_count == 3
    assert info.next_ms == millis(ran.ids[-1], "lim")  # the scheduler stays, stopped
    assert len(ran.jobs) == 3


async def test_an_end_date_stops_the_scheduler(url: str, backend: Backend) -> None:
    now = now_ms()
    end = now + 400
    await schedulers(backend).upsert_scheduler(spec("end", every_ms=100, end_ms=end), None, now)
    ran = Recorder()
    async with Worker("q", ran, url=url, drain_delay=0.2):

        async def stopped() -> bool:
            return now_ms() > end + 100 and not await iteration_ids(backend, "end", PENDING)

        await wait_for(stopped, timeout=20, what="the schedule to end")
    slots = [millis(i, "end") for i in ran.ids]
    assert slots and slots[0] == now
    # BullMQ: an iteration started before the end may make one more after it, no more.
    assert all(slot <= end + 100 for slot in slots)
    assert all(job.processed_on is not None for job in ran.jobs)
    starts = [job.processed_on * 1000 for job in ran.jobs if job.processed_on is not None]
    assert sum(1 for start in starts if start > end) <= 1


async def test_upserting_again_keeps_one_pending_iteration_at_its_slot(
    backend: Backend,
) -> None:
    store = schedulers(backend)
    now = now_ms()
    first = await store.upsert_scheduler(spec("u", every_ms=60_000, data={"v": 1}), None, now)
    again = await store.upsert_scheduler(spec("u", every_ms=60_000, data={"v": 2}), None, now + 5)
    assert again == first  # the same slot, not doubled, not skipped
    assert await iteration_ids(backend, "u", PENDING) == [first]
    job = await backend.get_job(first)
    assert job is not None and job.data == {"v": 2}
    # A changed interval re-times the scheduler: its first slot is now.
    changed = await store.upsert_scheduler(spec("u", every_ms=120_000), None, now + 10)
    assert changed == f"repeat:u:{now + 10}"
    assert await iteration_ids(backend, "u", PENDING) == [changed]
    # A start date moves the first slot to it (delayed).
    later = await store.upsert_scheduler(
        spec("u", every_ms=30_000, start_ms=now + 3_600_000), None, now + 20
    )
    assert later == f"repeat:u:{now + 3_600_000}"
    assert await iteration_ids(backend, "u", PENDING) == [later]
    assert await backend.get_state(later) == "delayed"
    # A cron scheduler takes the new cron time (BullMQ 5.62.2+, #3500).
    cron = await store.upsert_scheduler(spec("u", pattern="0 12 * * *"), now + 7_200_000, now)
    assert cron == f"repeat:u:{now + 7_200_000}"
    assert await iteration_ids(backend, "u", PENDING) == [cron]
    info = await store.get_scheduler("u")
    assert info is not None and info.iteration_count == 1  # ic is kept across upserts
    assert info.pattern == "0 12 * * *" and info.every_ms is None


async def test_an_upsert_while_an_iteration_runs_neither_doubles_nor_misses_the_next(
    url: str, backend: Backend
) -> None:
    """The running iteration made the next one at its start; the upsert replaces that
    pending one (same slot, new data), and the schedule goes on from there."""
    store = schedulers(backend)
    await store.upsert_scheduler(spec("r", every_ms=1_000, data={"v": 1}), None, now_ms())
    release = asyncio.Event()
    ran = Recorder()

    async def handler(job: Job) -> None:
        await ran(job)
        if len(ran.jobs) == 1:
            await release.wait()

    async with Worker("q", handler, url=url, drain_delay=0.2):
        await wait_for(lambda: len(ran.jobs) == 1, timeout=10, what="the first iteration")
        pending = await iteration_ids(backend, "r", PENDING)
        assert len(pending) == 1
        replaced = await store.upsert_scheduler(
            spec("r", every_ms=1_000, data={"v": 2}), None, now_ms()
        )
        assert replaced == pending[0]
        assert await iteration_ids(backend, "r", PENDING) == [replaced]
        release.set()
        await wait_for(lambda: len(ran.jobs) >= 3, timeout=20, what="two more iterations")
    assert ran.ids[1] == replaced and ran.jobs[1].data == {"v": 2}
    assert len(set(ran.ids)) == len(ran.ids)
    slots = [millis(i, "r") for i in ran.ids]
    assert all(b > a and (b - a) % 1_000 == 0 for a, b in itertools.pairwise(slots))


async def test_remove_deletes_the_scheduler_and_its_delayed_iteration(
    backend: Backend,
) -> None:
    store = schedulers(backend)
    now = now_ms()
    job_id = await store.upsert_scheduler(
        spec("gone", every_ms=1_000, start_ms=now + 60_000), None, now
    )
    assert await backend.get_state(job_id) == "delayed"
    last = await backend.read_events("0", 10_000, 0)
    assert await store.remove_scheduler("gone") is True
    assert await backend.get_job(job_id) is None
    assert await store.get_scheduler("gone") is None
    assert await store.remove_scheduler("gone") is False
    events = await backend.read_events(last[-1][0], 100, 0)
    assert {"event": "removed", "jobId": job_id, "prev": "delayed"} in [e for _, e in events]


async def test_a_removed_schedulers_ready_iteration_runs_once(url: str, backend: Backend) -> None:
    store = schedulers(backend)
    job_id = await store.upsert_scheduler(spec("once", every_ms=100), None, now_ms())
    assert await store.remove_scheduler("once") is True
    assert await backend.get_state(job_id) == "waiting"  # it stays, and runs once
    ran = Recorder()
    async with Worker("q", ran, url=url, drain_delay=0.2):
        await wait_for(lambda: len(ran.jobs) == 1, timeout=10, what="the iteration")
        await wait_for(
            lambda: _state_is(backend, job_id, "completed"), timeout=10, what="completion"
        )
    assert ran.ids == [job_id]
    assert await iteration_ids(backend, "once", PENDING) == []  # no scheduler: no next


async def _state_is(backend: Backend, job_id: str, state: str) -> bool:
    return await backend.get_state(job_id) == state


async def test_get_scheduler_and_get_schedulers(backend: Backend) -> None:
    store = schedulers(backend)
    now = now_ms()
    await store.upsert_scheduler(
        spec(
            "a", every_ms=5_000, offset_ms=1_234, limit=9, end_ms=now + 10**8,
            data={"x": 1}, opts={"attempts": 3, "priority": 2}, name="alpha",
        ),
        None,
        now,
    )  # fmt: skip
    await store.upsert_scheduler(
        spec("b", pattern="30 9 * * 1-5", tz="Europe/Paris", start_ms=now), now + 50_000, now
    )
    await store.upsert_scheduler(spec("c", every_ms=1_000, start_ms=now + 90_000), None, now)
    a = await store.get_scheduler("a")
    assert a is not None
    assert (a.scheduler_id, a.name, a.every_ms, a.pattern, a.limit) == ("a", "alpha", 5_000,
                                                                         None, 9)  # fmt: skip
    assert a.offset_ms == 1_234 and a.end_ms == now + 10**8 and a.iteration_count == 1
    assert a.next_ms is not None and a.next_ms % 5_000 == 1_234 and a.next_ms > now
    assert a.template == {"data": {"x": 1}, "opts": {"attempts": 3, "priority": 2}}
    b = await store.get_scheduler("b")
    assert b is not None and (b.pattern, b.tz, b.start_ms, b.next_ms) == (
        "30 9 * * 1-5", "Europe/Paris", now, now + 50_000,
    )  # fmt: skip
    assert await store.get_scheduler("nope") is None
    every = await store.get_schedulers(0, -1, False)
    assert [s.scheduler_id for s in every] == ["c", "b", "a"]  # by next run, latest first
    assert [s.scheduler_id for s in await store.get_schedulers(0, -1, True)] == ["a", "b", "c"]
    assert [s.scheduler_id for s in await store.get_schedulers(1, 1, True)] == ["b"]
    assert [s.scheduler_id for s in await store.get_schedulers(-2, -1, True)] == ["b", "c"]
    assert await store.get_schedulers(5, 9, True) == []


async def test_two_workers_never_make_the_same_iteration_twice(url: str, backend: Backend) -> None:
    """Two workers (on SQLite each with its own connection to the file) take iterations
    of one fast scheduler; each iteration exists and runs exactly once."""
    await schedulers(backend).upsert_scheduler(spec("race", every_ms=40), None, now_ms())
    ran = Recorder()
    async with (
        Worker("q", ran, url=url, drain_delay=0.2, concurrency=2),
        Worker("q", ran, url=url, drain_delay=0.2, concurrency=2),
    ):
        await wait_for(lambda: len(ran.jobs) >= 25, timeout=60, what="25 iterations")
    counts = Counter(ran.ids)
    assert max(counts.values()) == 1, counts.most_common(3)
    slots = sorted(millis(i, "race") for i in counts)
    assert all((b - a) % 40 == 0 for a, b in itertools.pairwise(slots))
    events = [e for _, e in await backend.read_events("0", 10_000, 0)]
    assert not [e for e in events if e["event"] == "duplicated"]
    added = [e["jobId"] for e in events if e["event"] == "added"]
    assert len(added) == len(set(added))


async def test_catch_up_after_downtime_is_one_run(url: str, backend: Backend) -> None:
    """No worker for ten slots: the overdue iteration runs once, the next one is the
    first slot after that run's start (missed slots are skipped, not back-filled)."""
    now = now_ms()
    await schedulers(backend).upsert_scheduler(spec("cu", every_ms=100), None, now)
    await wait_for(lambda: now_ms() > now + 1_000, timeout=5, what="ten slots to pass")
    ran = Recorder()
    async with Worker("q", ran, url=url, drain_delay=0.2):
        await wait_for(lambda: len(ran.jobs) >= 2, timeout=10, what="two runs")
    first, second = ran.jobs[0], ran.jobs[1]
    assert millis(first.id, "cu") == now
    assert first.processed_on is not None
    gap = millis(second.id, "cu") - now
    assert gap % 100 == 0 and millis(second.id, "cu") > first.processed_on * 1000 - 1
    assert gap > 1_000  # not now + 100: the ten missed slots were not run


async def test_cron_with_a_time_zone_makes_the_next_local_time(url: str, backend: Backend) -> None:
    pattern, tz = "0 9 * * *", "Asia/Tokyo"
    now = now_ms()
    first_ms = CronPattern.parse(pattern).next_after(now, tz=tz)
    assert first_ms is not None
    store = schedulers(backend)
    job_id = await store.upsert_scheduler(spec("tokyo", pattern=pattern, tz=tz), first_ms, now)
    assert job_id == f"repeat:tokyo:{first_ms}"
    assert await backend.get_state(job_id) == "delayed"
    assert await backend.promote(job_id) == 0  # run it now rather than tomorrow
    ran = Recorder()
    async with Worker("q", ran, url=url, drain_delay=0.2):
        await wait_for(lambda: len(ran.jobs) == 1, timeout=10, what="the iteration")
    following = CronPattern.parse(pattern).next_after(first_ms, tz=tz)
    assert following == first_ms + 86_400_000  # Tokyo has no DST
    assert await iteration_ids(backend, "tokyo", PENDING) == [f"repeat:tokyo:{following}"]
    job = await backend.get_job(f"repeat:tokyo:{following}")
    assert job is not None
    repeat = job.opts.extra["repeat"]
    assert repeat["pattern"] == pattern and repeat["tz"] == tz and repeat["count"] == 2
    assert job.opts.extra["prevMillis"] == following


async def test_the_current_iteration_cannot_be_removed(backend: Backend) -> None:
    """Removing it would end the schedule (nothing else makes the next one): refused with
    BullMQ's -8, as on Redis. drain and clean leave it too."""
    store = schedulers(backend)
    job_id = await store.upsert_scheduler(spec("keep", every_ms=60_000), None, now_ms())
    assert await backend.remove(job_id) == ScriptCode.SCHEDULER_JOB
    assert await backend.drain(True) == 0
    assert await backend.clean("waiting", now_ms() + 1, 0) == []
    assert await backend.get_state(job_id) == "waiting"
    assert await store.remove_scheduler("keep") is True
    assert await backend.remove(job_id) == 1  # no longer any scheduler's


async def test_the_queue_api_reads_iterations_as_jobs(url: str, backend: Backend) -> None:
    now = now_ms()
    job_id = await schedulers(backend).upsert_scheduler(
        spec("q1", every_ms=10_000, start_ms=now + 10_000, opts={"attempts": 2}), None, now
    )
    async with Queue("q", url=url) as queue:
        job = await queue.get_job(job_id)
        assert job is not None
        assert job.repeat_job_key == "q1" and job.opts.attempts == 2
        assert job.opts.extra["repeat"] == {"every": 10_000, "offset": now % 10_000,
                                            "startDate": now + 10_000, "count": 1}  # fmt: skip
        assert await queue.get_job_counts("delayed") == {"delayed": 1}


@pytest.mark.parametrize("every", [None, 1_000])
async def test_a_bad_spec_is_refused_and_changes_nothing(
    backend: Backend, every: int | None
) -> None:
    from dockyard.errors import InvalidOptionError

    bad = spec("bad", every_ms=every, pattern="61 * * * *" if every is None else "* * * * *")
    with pytest.raises(InvalidOptionError):
        await schedulers(backend).upsert_scheduler(bad, None, now_ms())
    assert await schedulers(backend).get_scheduler("bad") is None
    assert await backend.get_counts(["waiting", "delayed"]) == {"waiting": 0, "delayed": 0}


async def test_two_backends_share_the_schedulers_of_a_queue(url: str, backend: Backend) -> None:
    await schedulers(backend).upsert_scheduler(spec("shared", every_ms=5_000), None, now_ms())
    other = open_backend(url, "q")
    try:
        info = await schedulers(other).get_scheduler("shared")
        assert info is not None and info.every_ms == 5_000
        elsewhere = other.sibling("another")
        try:
            assert await schedulers(elsewhere).get_schedulers(0, -1, True) == []
        finally:
            await elsewhere.close()
    finally:
        await other.close()


async def test_obliterate_deletes_the_schedulers_too(backend: Backend) -> None:
    store = schedulers(backend)
    await store.upsert_scheduler(spec("ob", every_ms=1_000), None, now_ms())
    await backend.pause()
    assert await backend.obliterate(False) == 0
    assert await store.get_schedulers(0, -1, True) == []
    assert await backend.get_counts(["waiting", "paused"]) == {"waiting": 0, "paused": 0}
