"""Real worker processes signalled or killed mid-job: graceful exits and recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import redis
from dockyard import Job, Queue, Worker

from ..waiting import wait_for

RUNNER = Path(__file__).with_name("worker_proc.py")


class Proc:
    """A worker_proc.py process and the file its jobs write to."""

    def __init__(self, url: str, log: Path, **options: float) -> None:
        self.log = log
        args = {"redis": url, "queue": "q", "log": str(log), **options}
        self.popen = subprocess.Popen(
            [sys.executable, str(RUNNER), json.dumps(args)], stdout=subprocess.PIPE, text=True
        )
        assert self.popen.stdout is not None
        assert self.popen.stdout.readline().strip() == "ready"

    def lines(self, kind: str) -> list[str]:
        if not self.log.exists():
            return []
        text = self.log.read_text().splitlines()
        return [line.split()[1] for line in text if line.startswith(kind)]


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(10)


async def _add(url: str, count: int, sleep: float) -> list[str]:
    async with Queue("q", url=url) as queue:
        jobs = await queue.add_bulk([("s", {"sleep": sleep, "i": i}) for i in range(count)])
    return [job.id for job in jobs]


async def test_sigterm_finishes_the_active_jobs_and_takes_no_more(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, procs: list[Proc]
) -> None:
    """5 active jobs of 1 s and 20 waiting; SIGTERM; exit 0 with 5 completed, 20 waiting."""
    await _add(redis_url, 25, 1.0)
    proc = Proc(redis_url, tmp_path / "log", concurrency=5)
    procs.append(proc)
    await wait_for(lambda: _count(proc, "start", 5), what="5 started jobs")
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(15) == 0
    assert len(proc.lines("start")) == 5
    assert sorted(proc.lines("end")) == sorted(proc.lines("start"))
    assert redis_sync.zcard("bull:q:completed") == 5
    assert redis_sync.llen("bull:q:wait") == 20
    assert redis_sync.llen("bull:q:active") == 0


async def test_a_second_sigterm_exits_at_once_and_the_jobs_are_recovered(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, procs: list[Proc]
) -> None:
    """3 active jobs of 30 s; two SIGTERMs; another worker recovers them as stalled."""
    ids = await _add(redis_url, 3, 30.0)
    proc = Proc(redis_url, tmp_path / "log", concurrency=3, lock_duration=1.0, stalled_interval=0.5)
    procs.append(proc)
    await wait_for(lambda: _count(proc, "start", 3), what="3 started jobs")
    proc.popen.send_signal(signal.SIGTERM)
    # Signals of one kind do not queue: send the second only once the first was seen.
    assert proc.popen.stdout is not None
    for line in proc.popen.stdout:
        if "SIGTERM received" in line:
            break
    proc.popen.send_signal(signal.SIGTERM)
    proc.popen.wait(10)
    assert proc.lines("end") == []
    assert sorted(redis_sync.lrange("bull:q:active", 0, -1)) == sorted(ids)

    async def quick(job: Job) -> str:
        return "recovered"

    async with (
        Queue("q", url=redis_url) as queue,
        Worker("q", quick, url=redis_url, concurrency=3, lock_duration=1, stalled_interval=0.5),
    ):
        for job_id in ids:
            job = await queue.get_job(job_id)
            assert job is not None
            assert await job.wait_until_finished(timeout=20) == "recovered"
        for job_id in ids:
            job = await queue.get_job(job_id)
            assert job is not None
            assert job.attempts_started == 2 and job.stalled_counter == 1


async def test_a_sigkilled_worker_loses_no_job(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, procs: list[Proc]
) -> None:
    """40 jobs of 50 ms, 3 at a time; the worker is SIGKILLed after 10; a second one finishes."""
    ids = await _add(redis_url, 40, 0.05)
    victim = Proc(redis_url, tmp_path / "a", concurrency=3, lock_duration=1.0, stalled_interval=0.5)
    procs.append(victim)
    await wait_for(lambda: _count(victim, "end", 10), what="10 finished jobs")
    os.kill(victim.popen.pid, signal.SIGKILL)
    victim.popen.wait(10)
    rescuer = Proc(
        redis_url, tmp_path / "b", concurrency=3, lock_duration=1.0, stalled_interval=0.5
    )
    procs.append(rescuer)
    await wait_for(
        lambda: int(redis_sync.zcard("bull:q:completed")) == 40, timeout=30, what="all 40 completed"
    )
    started_twice = set(victim.lines("start")) & set(rescuer.lines("start"))
    assert started_twice <= set(victim.lines("start")) - set(victim.lines("end"))
    assert set(victim.lines("end")) | set(rescuer.lines("end")) == set(ids)
    for job_id in started_twice:
        assert redis_sync.hget(f"bull:q:{job_id}", "ats") == "2"


async def _count(proc: Proc, kind: str, n: int) -> bool:
    return len(proc.lines(kind)) >= n


async def test_a_plain_handler_longer_than_its_lock_keeps_it(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    import time as _time

    def slow(job: object) -> str:
        _time.sleep(2.5)
        return "done"

    async with Queue("q", url=redis_url) as queue:
        job = await queue.add("s", {})
        async with Worker("q", slow, url=redis_url, lock_duration=1, stalled_interval=0.3):
            assert await job.wait_until_finished(timeout=10) == "done"
    h = redis_sync.hgetall(f"bull:q:{job.id}")
    assert "stc" not in h and h["ats"] == "1"
