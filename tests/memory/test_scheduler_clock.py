"""Job schedulers on the memory store's virtual clock: iterations fire as time moves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dockyard import Job, Worker
from dockyard.backends import open_backend
from dockyard.backends.memory import ManualClock, MemoryBackend
from dockyard.backends.schedulerstore import SchedulerSpec, SchedulerStore
from dockyard.cron import CronPattern

from ..waiting import wait_for

PARIS = ZoneInfo("Europe/Paris")


def _cron(sid: str, pattern: str, tz: str) -> SchedulerSpec:
    return SchedulerSpec(
        scheduler_id=sid, every_ms=None, pattern=pattern, tz=tz, start_ms=None, end_ms=None,
        limit=None, offset_ms=None, immediately=False, name="report", data="{}",
        opts='{"attempts":1}',
    )  # fmt: skip


async def test_a_year_of_a_daily_paris_cron_fires_365_times_at_nine_local(
    url: str, clock: ManualClock
) -> None:
    """``0 9 * * *`` in Europe/Paris for a year of virtual time: 365 runs, each at 09:00
    local time, on both sides of both DST changes, in seconds of real time."""
    backend = open_backend(url, "q")
    assert isinstance(backend, MemoryBackend)
    store: SchedulerStore = backend.schedulers
    now = clock.now_ms()
    first = CronPattern.parse("0 9 * * *").next_after(now, tz="Europe/Paris")
    assert first is not None
    await store.upsert_scheduler(_cron("daily", "0 9 * * *", "Europe/Paris"), first, now)
    started: list[Job] = []
    began = asyncio.Event()

    async def handler(job: Job) -> None:
        started.append(job)
        began.set()

    async with Worker("q", handler, url=url):
        for day in range(365):
            info = await store.get_scheduler("daily")
            assert info is not None and info.next_ms is not None
            began.clear()
            clock.advance((info.next_ms - clock.now_ms()) / 1000)
            await asyncio.wait_for(began.wait(), timeout=10)
            assert len(started) == day + 1
        await wait_for(lambda: _completed(backend, 365), timeout=10, what="365 completions")
    await backend.close()
    fired = [int(job.id.rsplit(":", 1)[1]) for job in started]
    assert len(set(fired)) == 365
    local = [datetime.fromtimestamp(ms / 1000, PARIS) for ms in fired]
    assert all((t.hour, t.minute, t.second) == (9, 0, 0) for t in local)
    # One run per calendar day, 365 days in a row.
    assert [t.date() for t in local] == [local[0].date() + timedelta(days=i) for i in range(365)]
    # Both offsets were met (winter +1 h, summer +2 h), so both DST changes were crossed.
    assert {t.utcoffset() for t in local} == {timedelta(hours=1), timedelta(hours=2)}
    # Each ran when it was due on the virtual clock.
    assert all(
        job.processed_on is not None and round(job.processed_on * 1000) == ms
        for job, ms in zip(started, fired, strict=True)
    )
    assert all(job.opts.extra["repeat"]["tz"] == "Europe/Paris" for job in started)
    assert datetime.fromtimestamp(fired[-1] / 1000, UTC) > datetime.fromtimestamp(
        fired[0] / 1000, UTC
    ) + timedelta(days=363)


async def _completed(backend: MemoryBackend, count: int) -> bool:
    return (await backend.get_counts(["completed"]))["completed"] == count


async def test_every_iterations_fire_as_virtual_time_moves(url: str, clock: ManualClock) -> None:
    backend = open_backend(url, "q")
    assert isinstance(backend, MemoryBackend)
    store: SchedulerStore = backend.schedulers
    now = clock.now_ms()
    spec = SchedulerSpec(
        scheduler_id="hourly", every_ms=3_600_000, pattern=None, tz=None, start_ms=None,
        end_ms=None, limit=None, offset_ms=None, immediately=False, name="h", data="{}",
        opts="{}",
    )  # fmt: skip
    await store.upsert_scheduler(spec, None, now)
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    async with Worker("q", handler, url=url):
        await wait_for(lambda: len(ran) == 1, what="the first iteration")
        for hour in range(1, 5):
            clock.advance(3_600)
            await wait_for(lambda h=hour: len(ran) == h + 1, what=f"iteration {hour + 1}")
        # Downtime of a day (no advance steps in between): one catch-up run, not 24.
        clock.advance(timedelta(days=1))
        await wait_for(lambda: len(ran) == 6, what="the catch-up run")
        # The catch-up run made the next iteration at the first slot after it, no other.
        assert await backend.get_job_ids("waiting", 0, -1, True) == []
        due = now + 29 * 3_600_000
        assert await backend.get_job_ids("delayed", 0, -1, True) == [f"repeat:hourly:{due}"]
        assert len(ran) == 6
    await backend.close()
    assert ran[:5] == [f"repeat:hourly:{now + h * 3_600_000}" for h in range(5)]
    assert ran[5] == f"repeat:hourly:{now + 5 * 3_600_000}"
