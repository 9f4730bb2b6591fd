"""memory://?clock=manual: time moves only when told, and delays, backoffs, lock expiry
and stalled checks fire at once when it does."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from dockyard import Backoff, Job, JobFailed, LockLostError, Queue, Worker
from dockyard.backends.base import Finish, Lease
from dockyard.backends.memory import ManualClock, MemoryBackend

from ..waiting import wait_for


async def echo(job: Job) -> object:
    return job.data


def _backend(queue: Queue) -> MemoryBackend:
    backend = queue.backend
    assert isinstance(backend, MemoryBackend)
    return backend


async def test_the_clock_stands_still_until_advanced(queue: Queue, clock: ManualClock) -> None:
    start = clock.now()
    await asyncio.sleep(0.02)
    assert clock.now() == start
    clock.advance(1.5)
    assert clock.now() == pytest.approx(start + 1.5)
    clock.advance(timedelta(minutes=1))
    assert clock.now() == pytest.approx(start + 61.5)
    job = await queue.add("a", {})
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.timestamp == pytest.approx(start + 61.5)


async def test_a_job_delayed_an_hour_completes_after_advance_without_waiting(
    queue: Queue, url: str, clock: ManualClock
) -> None:
    job = await queue.add("later", {"n": 1}, delay=3600)
    async with Worker("q", echo, url=url):
        clock.advance(3599)
        await asyncio.sleep(0.05)  # the absence of processing is what is tested
        assert await job.get_state() == "delayed"
        began = time.monotonic()
        clock.advance(1)
        assert await job.wait_until_finished(timeout=5) == {"n": 1}
        assert time.monotonic() - began < 1.0
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.delay == 0
    assert stored.processed_on == pytest.approx(stored.timestamp + 3600)


async def test_advance_promotes_due_jobs_in_due_order(queue: Queue, clock: ManualClock) -> None:
    await queue.add("c", {}, delay=30)
    await queue.add("a", {}, delay=10)
    await queue.add("b", {}, delay=20)
    await queue.add("d", {}, delay=40)
    _backend(queue).advance(35)
    waiting = await queue.get_jobs("waiting", asc=True)
    assert [j.name for j in waiting] == ["a", "b", "c"]
    assert (await queue.get_job_counts("delayed"))["delayed"] == 1


async def test_a_backoff_of_ten_minutes_is_skipped_by_advance(
    queue: Queue, url: str, clock: ManualClock
) -> None:
    async def fail_once(job: Job) -> str:
        if job.attempts_made == 0:
            raise RuntimeError("first attempt")
        return "second"

    job = await queue.add("f", {}, attempts=2, backoff=Backoff.fixed(600))
    async with Worker("q", fail_once, url=url):

        async def delayed() -> bool:
            return await job.get_state() == "delayed"

        await wait_for(delayed, what="the retry to be delayed")
        clock.advance(600)
        assert await job.wait_until_finished(timeout=5) == "second"
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.attempts_made == 2
    assert stored.failed_reason == "first attempt"


async def test_a_lock_expires_on_the_virtual_clock(queue: Queue, clock: ManualClock) -> None:
    await queue.add("a", {})
    backend = _backend(queue)
    [job] = (await backend.fetch(Lease("tok", 30_000), 1)).jobs
    clock.advance(29.999)
    assert await backend.extend_locks({job.id: "tok"}, 30_000) == []
    clock.advance(30)
    assert await backend.extend_locks({job.id: "tok"}, 30_000) == [job.id]
    with pytest.raises(LockLostError, match="missing"):
        await backend.finish(Finish(job.id, "tok", "completed", "1"), None)
    assert await job.get_state() == "active"


async def test_two_stalled_checks_run_by_advance_requeue_a_dead_workers_job(
    queue: Queue, clock: ManualClock
) -> None:
    await queue.add("a", {})
    backend = _backend(queue)
    [job] = (await backend.fetch(Lease("dead", 30_000), 1)).jobs
    assert await backend.check_stalled(1, 60_000) == []  # first pass marks it
    assert await backend.check_stalled(1, 60_000) == []  # guarded: too soon
    clock.advance(59)
    assert await job.get_state() == "active"
    clock.advance(1)  # the check due now finds it unlocked and marked
    assert await job.get_state() == "waiting"
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.stalled_counter == 1
    assert stored.deferred_failure is None
    names = [(e["event"], e.get("prev")) for _, e in await backend.read_events("0")]
    assert ("stalled", None) in names and ("waiting", "active") in names


async def test_a_job_whose_worker_died_is_finished_by_another_after_advance(
    queue: Queue, url: str, clock: ManualClock
) -> None:
    added = await queue.add("a", {"v": 7})
    [taken] = (await _backend(queue).fetch(Lease("dead-worker", 30_000), 1)).jobs
    assert taken.id == added.id
    async with Worker("q", echo, url=url, stalled_interval=30, lock_duration=30):
        await asyncio.sleep(0.05)  # the worker runs its first stalled check
        assert await added.get_state() == "active"
        clock.advance(30 + 2 * 30)  # lock_duration + 2 * stalled_interval
        assert await added.wait_until_finished(timeout=5) == {"v": 7}
    stored = await queue.get_job(added.id)
    assert stored is not None and stored.stalled_counter == 1
    assert stored.attempts_started == 2


async def test_a_job_stalled_too_often_is_failed_by_the_next_worker(
    queue: Queue, url: str, clock: ManualClock
) -> None:
    added = await queue.add("a", {}, attempts=5)
    backend = _backend(queue)
    for round_ in range(2):
        [job] = (await backend.fetch(Lease(f"t{round_}", 30_000), 1)).jobs
        await backend.check_stalled(1, 30_000)
        clock.advance(60)
        assert await job.get_state() == "waiting"
    stored = await queue.get_job(added.id)
    assert stored is not None
    assert stored.deferred_failure.startswith(
        "job stalled more than allowable limit (its worker died"
    )
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    async with Worker("q", handler, url=url):
        with pytest.raises(JobFailed, match="stalled more than allowable limit"):
            await added.wait_until_finished(timeout=5)
    assert ran == []
    stored = await queue.get_job(added.id)
    assert stored is not None and stored.deferred_failure is None
    assert stored.stalled_counter == 2


async def test_a_long_advance_with_a_short_interval_stays_fast(
    queue: Queue, clock: ManualClock
) -> None:
    await queue.add("a", {})
    backend = _backend(queue)
    [job] = (await backend.fetch(Lease("t", 3_600_000), 1)).jobs  # locked for an hour
    await backend.check_stalled(1, 1)  # a check every millisecond
    began = time.monotonic()
    clock.advance(3 * 3600)
    assert time.monotonic() - began < 1.0
    assert await job.get_state() == "waiting"


async def test_retention_by_age_follows_the_virtual_clock(
    queue: Queue, url: str, clock: ManualClock
) -> None:
    old = await queue.add("a", {}, remove_on_complete={"age": 60})
    async with Worker("q", echo, url=url):
        await old.wait_until_finished(timeout=5)
        clock.advance(61)
        new = await queue.add("b", {}, remove_on_complete={"age": 60})
        await new.wait_until_finished(timeout=5)
    assert await queue.get_job(old.id) is None
    assert await queue.get_job(new.id) is not None


async def test_an_idle_worker_does_not_spin_while_a_job_is_delayed(
    queue: Queue, url: str, clock: ManualClock
) -> None:
    calls = 0
    backend = MemoryBackend(url, "q")
    real_fetch = backend.fetch

    async def counting_fetch(lease: Lease, count: int):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await real_fetch(lease, count)

    backend.fetch = counting_fetch  # type: ignore[method-assign]
    job = await queue.add("a", {}, delay=0.001)
    await asyncio.sleep(0.01)  # the job is due in real time, not on the store's clock
    async with Worker("q", echo, backend=backend):
        await asyncio.sleep(0.3)  # the absence of busy fetching is what is tested
        assert calls <= 3
        clock.advance(0.001)
        assert await job.wait_until_finished(timeout=5) == {}


async def test_a_workers_rate_limit_counts_on_the_virtual_clock(
    queue: Queue, clock: ManualClock
) -> None:
    await queue.add_bulk([("a", {"i": i}) for i in range(5)])
    backend = _backend(queue)
    lease = Lease("t", 30_000, None, limit_max=2, limit_ms=1000)
    assert len((await backend.fetch(lease, 5)).jobs) == 2
    limited = await backend.fetch(lease, 5)
    assert limited.jobs == [] and limited.rate_limit_ms == 1000
    clock.advance(0.4)
    assert (await backend.fetch(lease, 5)).rate_limit_ms == 600
    clock.advance(0.6)
    assert len((await backend.fetch(lease, 5)).jobs) == 2


async def test_a_fetch_promotes_at_most_a_thousand_due_jobs_as_the_scripts_do(
    queue: Queue, clock: ManualClock
) -> None:
    await queue.add_bulk([("a", {}, {"delay": 1}) for _ in range(1500)])
    # Promotion by a fetch, not by advance: move the store's time by hand.
    clock._ms += 2000
    fetched = await _backend(queue).fetch(Lease("t", 30_000), 1)
    assert len(fetched.jobs) == 1
    counts = await queue.get_job_counts("waiting", "delayed", "active")
    assert counts == {"waiting": 999, "delayed": 500, "active": 1}
    clock.advance(0)  # advance promotes every due job
    assert (await queue.get_job_counts("delayed"))["delayed"] == 0


async def test_metrics_fill_one_data_point_per_elapsed_minute(url: str, clock: ManualClock) -> None:
    from dockyard import Queue, Worker

    async def ok(job: Job) -> None:
        return None

    async with (
        Queue("m", url=url) as queue,
        Worker("m", ok, url=url, metrics={"max_data_points": 5}),
    ):
        for batch in (3, 2):
            jobs = [await queue.add("a", {}) for _ in range(batch)]
            for job in jobs:
                await job.wait_until_finished(timeout=5)
            clock.advance(120)  # two minutes later
        last = await queue.add("a", {})
        await last.wait_until_finished(timeout=5)
        metrics = await queue.get_metrics("completed")
    # Jobs per minute, newest first, written when a later minute is seen: 3 in the first
    # minute, none in the next, 2 in the third, none in the fourth (the last job's minute
    # is still open).
    assert metrics["count"] == 6
    assert metrics["data"] == [0, 2, 0, 3]
