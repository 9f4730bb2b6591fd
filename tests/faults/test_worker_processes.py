"""Real worker processes signalled or killed mid-job: graceful exits and recovery.

Each worker is ``worker_proc.py`` in a child process; its handler writes ``start <id>`` /
``end <id>`` to a file, so the test knows exactly which handler calls began and ended.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import redis
from dockyard import Job, Queue, Worker

from ..waiting import wait_for
from .helpers import WorkerProcess, blocked_on_marker, events_per_job, job_hashes, wait_exit


@pytest.fixture
def procs() -> Iterator[list[WorkerProcess]]:
    """Worker processes of the test; any still running at the end are SIGKILLed."""
    started: list[WorkerProcess] = []
    yield started
    for proc in started:
        proc.stop()


def _spawn(procs: list[WorkerProcess], url: str, log: Path, **options: Any) -> WorkerProcess:
    proc = WorkerProcess(url, log, **options)
    procs.append(proc)
    return proc


async def _add(url: str, count: int, sleep: float) -> list[str]:
    async with Queue("q", url=url) as queue:
        jobs = await queue.add_bulk([("s", {"sleep": sleep, "i": i}) for i in range(count)])
    return [job.id for job in jobs]


async def test_sigterm_finishes_the_5_active_jobs_starts_none_of_the_20_waiting_and_exits_0(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    """25 jobs of 1 s, concurrency 5. SIGTERM once all 5 slots run (none has ended):
    the process exits 0 within 10 s; exactly those 5 handler calls started and ended and
    are the 5 members of ``completed`` (one ``completed`` event each); the other 20 are
    in ``wait``, never started (no ``ats``/``processedOn``); ``active`` is empty."""
    ids = await _add(redis_url, 25, 1.0)
    proc = _spawn(procs, redis_url, tmp_path / "jobs.log", concurrency=5)
    await wait_for(lambda: proc.said("ready"), timeout=10, what="the worker to be ready")
    await wait_for(lambda: len(proc.jobs("start")) == 5, timeout=10, what="5 started jobs")
    active = proc.jobs("start")
    assert proc.jobs("end") == [], "the jobs must still run when the signal is sent"

    proc.signal(signal.SIGTERM)
    code, _ = await wait_exit(proc, timeout=10)

    assert code == 0, proc.transcript()
    assert proc.said("SIGTERM received"), proc.transcript()
    assert proc.jobs("start") == active, "no job may start after the signal"
    assert sorted(proc.jobs("end")) == sorted(active)
    assert sorted(redis_sync.zrange("bull:q:completed", 0, -1)) == sorted(active)
    assert events_per_job(redis_sync, "completed") == Counter(active)
    waiting = [job_id for job_id in ids if job_id not in active]
    assert len(waiting) == 20
    assert sorted(redis_sync.lrange("bull:q:wait", 0, -1)) == sorted(waiting)
    assert redis_sync.llen("bull:q:active") == 0
    hashes = job_hashes(redis_sync, ids)
    for job_id in active:
        assert (hashes[job_id]["ats"], hashes[job_id]["atm"]) == ("1", "1")
        assert hashes[job_id]["returnvalue"] == '"ok"'
    for job_id in waiting:
        assert "ats" not in hashes[job_id] and "processedOn" not in hashes[job_id]


async def test_a_second_sigterm_exits_at_once_and_puts_its_jobs_back_to_wait(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    """5 jobs of 30 s, concurrency 5, lock_duration 1 s, stalled_interval 0.5 s. Two
    SIGTERMs (the second once the first was handled): the process exits within 5 s; no
    handler ended; the 5 jobs are back in ``wait`` at once (not left to the stalled check),
    with no attempt counted and no lock. A new in-process worker completes them: its handler
    runs once per job; each job ends with ats 2, atm 1, no stall, one ``completed`` event."""
    ids = await _add(redis_url, 5, 30.0)
    settings = {"concurrency": 5, "lock_duration": 1, "stalled_interval": 0.5}
    proc = _spawn(procs, redis_url, tmp_path / "jobs.log", **settings)
    await wait_for(lambda: len(proc.jobs("start")) == 5, timeout=10, what="5 started jobs")
    proc.signal(signal.SIGTERM)
    # Signals of one kind do not queue: send the second only once the first was handled.
    await wait_for(lambda: proc.said("SIGTERM received"), timeout=5, what="the first SIGTERM")
    proc.signal(signal.SIGTERM)
    await wait_exit(proc, timeout=5)

    assert proc.said("received again"), proc.transcript()
    assert sorted(proc.jobs("start")) == sorted(ids)
    assert proc.jobs("end") == []
    assert redis_sync.llen("bull:q:active") == 0
    assert sorted(redis_sync.lrange("bull:q:wait", 0, -1)) == sorted(ids)
    assert redis_sync.zcard("bull:q:completed") == 0
    for job_id, h in job_hashes(redis_sync, ids).items():
        assert h["ats"] == "1" and "atm" not in h and "finishedOn" not in h, (job_id, h)
        assert not redis_sync.exists(f"bull:q:{job_id}:lock")

    calls: Counter[str] = Counter()

    async def quick(job: Job) -> str:
        calls[job.id] += 1
        return "recovered"

    async with Worker(
        "q", quick, url=redis_url, concurrency=5, lock_duration=1, stalled_interval=0.5
    ):
        await wait_for(
            lambda: redis_sync.zcard("bull:q:completed") == 5, timeout=15, what="5 completed"
        )
    assert calls == Counter(ids)
    for job_id, h in job_hashes(redis_sync, ids).items():
        assert (h["ats"], h.get("stc"), h["atm"]) == ("2", None, "1"), (job_id, h)
        assert h["returnvalue"] == '"recovered"'
    assert events_per_job(redis_sync, "stalled") == Counter()
    assert events_per_job(redis_sync, "completed") == Counter(ids)
    assert redis_sync.llen("bull:q:active") == 0 and redis_sync.llen("bull:q:wait") == 0


async def test_a_sigkilled_worker_with_3_active_jobs_loses_none_and_none_runs_twice(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    """6 jobs of 30 s; worker A (concurrency 3, lock_duration 1 s, stalled_interval 0.5 s)
    is SIGKILLed with 3 of them running. Worker B (a process with the same settings, each
    job sleeping 0.05 s instead) completes all 6: B's handler starts and ends each job
    exactly once, A's ended none; ``completed`` holds the 6, one ``completed`` event each;
    A's 3 come back through the stalled check (one ``stalled`` event, stc 1, ats 2), the
    other 3 never stalled (ats 1, no stc); every job has atm 1."""
    ids = await _add(redis_url, 6, 30.0)
    settings = {"concurrency": 3, "lock_duration": 1, "stalled_interval": 0.5}
    victim = _spawn(procs, redis_url, tmp_path / "a.log", **settings)
    await wait_for(lambda: len(victim.jobs("start")) == 3, timeout=10, what="3 started jobs")
    killed = victim.jobs("start")
    assert sorted(redis_sync.lrange("bull:q:active", 0, -1)) == sorted(killed)
    victim.signal(signal.SIGKILL)
    code, _ = await wait_exit(victim, timeout=5)
    assert code == -signal.SIGKILL

    rescuer = _spawn(procs, redis_url, tmp_path / "b.log", sleep=0.05, **settings)
    await wait_for(
        lambda: redis_sync.zcard("bull:q:completed") == 6, timeout=20, what="all 6 completed"
    )
    rescuer.signal(signal.SIGTERM)
    code, _ = await wait_exit(rescuer, timeout=10)
    assert code == 0, rescuer.transcript()

    assert victim.jobs("start") == killed and victim.jobs("end") == []
    assert Counter(rescuer.jobs("start")) == Counter(ids)
    assert Counter(rescuer.jobs("end")) == Counter(ids)
    assert sorted(redis_sync.zrange("bull:q:completed", 0, -1)) == sorted(ids)
    assert events_per_job(redis_sync, "completed") == Counter(ids)
    assert events_per_job(redis_sync, "stalled") == Counter(killed)
    for job_id, h in job_hashes(redis_sync, ids).items():
        expected = ("2", "1") if job_id in killed else ("1", None)
        assert (h["ats"], h.get("stc"), h["atm"]) == (*expected, "1"), (job_id, h)
    assert redis_sync.llen("bull:q:active") == 0 and redis_sync.llen("bull:q:wait") == 0
    assert redis_sync.zcard("bull:q:failed") == 0


async def test_an_idle_worker_process_exits_0_within_2_s_of_sigterm(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    """No job; the worker waits on the marker (default drain_delay 5 s). SIGTERM: the
    process exits 0 within 2 s (the blocking wait is interrupted, not sat out), having
    started no job."""
    proc = _spawn(procs, redis_url, tmp_path / "jobs.log")
    await wait_for(lambda: blocked_on_marker(redis_sync), timeout=10, what="the blocking wait")
    proc.signal(signal.SIGTERM)
    code, _ = await wait_exit(proc, timeout=2)
    assert code == 0, proc.transcript()
    assert proc.jobs("start") == []
