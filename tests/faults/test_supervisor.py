"""``dockyard worker --processes N``: the supervisor restarts dead workers, recycles them,
survives its own death, and poison jobs end failed. Real processes on a private Redis."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import redis
from dockyard import Queue

from ..waiting import wait_for
from .helpers import Supervised, job_hashes


@pytest.fixture
def running() -> Iterator[list[Supervised]]:
    started: list[Supervised] = []
    yield started
    for s in started:
        s.stop()


def _completed(client: redis.Redis) -> int:
    return int(client.zcard("bull:q:completed"))


async def _add(url: str, n: int, **data: object) -> list[str]:
    async with Queue("q", url=url) as queue:
        jobs = await queue.add_bulk([("n", {"i": i, **data}) for i in range(n)])
    return [job.id for job in jobs]


async def test_worker_processes_killed_three_times_are_restarted_and_lose_nothing(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """3,000 jobs of 50 ms, 2 processes x concurrency 20; a worker process holding jobs is
    SIGKILLed three times mid-run. Each is restarted; every job completes exactly once
    (atm 1); the jobs a killed process held ran again (ats 2)."""
    ids = await _add(redis_url, 3000, sleep=0.05)
    sup = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                     "--processes", "2", "--concurrency", "20")  # fmt: skip
    running.append(sup)
    killed_pids: list[str] = []

    def busy_child() -> psutil.Process | None:
        """A worker process with jobs in hand (started, not ended)."""
        starts = Counter(pid for pid, _ in sup.entries("start"))
        ends = Counter(pid for pid, _ in sup.entries("end"))
        for child in sup.children():
            if starts[str(child.pid)] > ends[str(child.pid)] + 5:
                return child
        return None

    found: list[psutil.Process] = []  # kept by the check itself: a later look may differ

    def spotted() -> bool:
        child = busy_child()
        if child is not None:
            found.append(child)
        return child is not None

    for round_ in range(3):
        await wait_for(lambda: len(sup.children()) == 2, timeout=30, what="2 workers")
        await wait_for(
            lambda n=round_: len(sup.entries("end")) >= 300 * (n + 1),  # type: ignore[misc]
            timeout=60,
            what="progress",
        )
        await wait_for(spotted, timeout=30, what="a busy worker")
        victim = found[-1]
        killed_pids.append(str(victim.pid))
        victim.kill()
        await wait_for(
            lambda n=round_: sup.said("died with signal SIGKILL") > n,  # type: ignore[misc]
            timeout=10,
            what="the supervisor to see the death",
        )
    await wait_for(lambda: _completed(redis_sync) == 3000, timeout=120, what="3,000 completed")
    hashes = job_hashes(redis_sync, ids)
    assert all(h["atm"] == "1" for h in hashes.values())
    ends = Counter(job_id for _, job_id in sup.entries("end"))
    assert set(ends) == set(ids)
    held = {j for pid, j in sup.entries("start") if pid in killed_pids} - {
        j for pid, j in sup.entries("end") if pid in killed_pids
    }
    assert held, "the killed workers held jobs"
    for job_id in held:
        assert hashes[job_id]["ats"] == "2", (job_id, hashes[job_id])
    assert sup.said("restarting in") == 3


async def test_a_killed_supervisor_leaves_no_worker_behind_and_a_restart_finishes(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """600 jobs of 50 ms, 2 processes; the supervisor is SIGKILLed mid-run: its workers
    notice, finish their jobs and exit; a new supervisor completes the rest."""
    await _add(redis_url, 600, sleep=0.05)
    first = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                       "--processes", "2", "--concurrency", "10")  # fmt: skip
    running.append(first)
    await wait_for(lambda: len(first.children()) == 2, timeout=30, what="2 workers")
    orphans = first.children()
    await wait_for(lambda: len(first.entries("end")) >= 100, timeout=60, what="progress")
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)
    await wait_for(lambda: not any(p.is_running() and p.status() != "zombie" for p in orphans),
                   timeout=30, what="the orphaned workers to exit")  # fmt: skip
    assert _completed(redis_sync) < 600
    second = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                        "--processes", "2", "--concurrency", "10")  # fmt: skip
    running.append(second)
    await wait_for(lambda: _completed(redis_sync) == 600, timeout=120, what="600 completed")
    assert redis_sync.llen("bull:q:active") == 0 and redis_sync.zcard("bull:q:failed") == 0


async def test_a_worker_process_is_recycled_after_max_jobs(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """400 jobs, 1 process recycled every 100 jobs: at least 3 processes did the work and
    every job completed once."""
    await _add(redis_url, 400)
    sup = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                     "--max-jobs", "100", "--concurrency", "5")  # fmt: skip
    running.append(sup)
    await wait_for(lambda: _completed(redis_sync) == 400, timeout=120, what="400 completed")
    pids = {pid for pid, _ in sup.entries("end")}
    assert len(pids) >= 3
    assert sup.said("exited to be recycled") >= 3
    assert Counter(j for _, j in sup.entries("end")).most_common(1)[0][1] == 1


async def test_a_poison_job_that_kills_its_worker_ends_failed_and_others_flow(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """200 jobs, one of which kills its worker process every time (os._exit). With
    max_stalled_count 1 it is delivered twice, then fails with a reason that says its
    worker died; the 199 others complete. Concurrency 1, so that no innocent job shares
    the dying process (those would stall with it, as in BullMQ)."""
    async with Queue("q", url=redis_url) as queue:
        await queue.add_bulk([("n", {"i": i}) for i in range(100)])
        poison = await queue.add("n", {"poison": True})
        await queue.add_bulk([("n", {"i": i}) for i in range(100, 199)])
    sup = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:poison", "--queue", "q",
                     "--processes", "2", "--concurrency", "1",
                     "--max-stalled-count", "1")  # fmt: skip
    running.append(sup)
    await wait_for(lambda: redis_sync.zcard("bull:q:failed") == 1, timeout=60,
                   what="the poison job to fail")  # fmt: skip
    await wait_for(lambda: _completed(redis_sync) == 199, timeout=60, what="199 completed")
    h = redis_sync.hgetall(f"bull:q:{poison.id}")
    assert "worker died" in h["failedReason"]
    starts = Counter(j for _, j in sup.entries("start"))
    assert starts[poison.id] == 2
    assert h["atm"] == "1" and h["stc"] == "2"


async def test_sigterm_to_the_supervisor_lets_jobs_in_flight_finish(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """10 jobs of 1 s, 2 processes x concurrency 5: SIGTERM once all 10 started; the
    supervisor exits 0 and all 10 completed, none ran twice."""
    await _add(redis_url, 10, sleep=1.0)
    sup = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                     "--processes", "2", "--concurrency", "5")  # fmt: skip
    running.append(sup)
    await wait_for(lambda: len(sup.entries("start")) == 10, timeout=30, what="10 started")
    sup.popen.send_signal(signal.SIGTERM)
    await wait_for(lambda: sup.popen.poll() is not None, timeout=20, what="a clean exit")
    assert sup.popen.returncode == 0, "\n".join(sup.lines)
    assert _completed(redis_sync) == 10
    assert len(sup.entries("end")) == 10


async def _through_an_outage(
    server: Any, tmp_path: Path, running: list[Supervised], outage: float, how: str
) -> None:
    """5,000 jobs of 1 ms, 3 worker processes x concurrency 10; mid-run Redis goes away
    (``how``: SIGKILL, or a clean stop) for ``outage`` s and comes back on the same port
    with its appendonly file. The workers log the loss, reconnect by themselves and finish:
    no worker process is restarted, every job is completed exactly once (atm 1)."""
    client = redis.Redis(port=server.port, decode_responses=True)
    ids = await _add(server.url, 5000, sleep=0.001)
    sup = Supervised(server.url, tmp_path / "log", "tests.cli.handlers:record", "--queue", "q",
                     "--processes", "3", "--concurrency", "10")  # fmt: skip
    running.append(sup)
    await wait_for(lambda: client.zcard("bull:q:completed") >= 1500, timeout=60, what="progress")
    pids = {p.pid for p in sup.children()}
    assert len(pids) == 3
    if how == "kill":
        server.kill()
    else:
        server.stop()
    await asyncio.sleep(outage)  # the outage's length is what is tested
    server.start()
    client = redis.Redis(port=server.port, decode_responses=True)
    await wait_for(lambda: client.zcard("bull:q:completed") == 5000, timeout=120,
                   what="all 5,000 completed after the outage")  # fmt: skip
    assert {p.pid for p in sup.children()} == pids  # reconnected, not restarted
    assert sup.said("restarting in") == 0
    assert any("unreachable" in line or "lost" in line for line in sup.lines)
    hashes = job_hashes(client, ids)
    assert all(h.get("atm") == "1" for h in hashes.values())
    assert client.zcard("bull:q:failed") == 0 and client.llen("bull:q:active") == 0


async def test_a_redis_crash_with_three_worker_processes_loses_nothing(
    fresh_redis_server: Any, tmp_path: Path, running: list[Supervised]
) -> None:
    """Redis SIGKILLed (appendonly yes, appendfsync always), back 1 s later."""
    await _through_an_outage(fresh_redis_server, tmp_path, running, 1.0, "kill")


async def test_redis_gone_for_20_seconds_with_three_worker_processes_loses_nothing(
    fresh_redis_server: Any, tmp_path: Path, running: list[Supervised]
) -> None:
    """Redis stopped for 20 s, then started again."""
    await _through_an_outage(fresh_redis_server, tmp_path, running, 20.0, "stop")


async def test_isolated_workers_survive_a_job_that_kills_its_process(
    redis_url: str, redis_sync: redis.Redis, tmp_path: Path, running: list[Supervised]
) -> None:
    """``--isolate``: a job that calls os._exit kills only its child; that attempt fails,
    the job is retried (2 attempts, both crash: it ends failed, reason names the death),
    the other 20 jobs complete, and the worker process is never restarted."""
    async with Queue("q", url=redis_url) as queue:
        crash = await queue.add("n", {"crash": True}, attempts=2)
        await queue.add_bulk([("n", {"n": i}) for i in range(20)])
    sup = Supervised(redis_url, tmp_path / "log", "tests.cli.handlers:isolated", "--queue", "q",
                     "--processes", "2", "--concurrency", "3", "--isolate")  # fmt: skip
    running.append(sup)
    await wait_for(lambda: _completed(redis_sync) == 20, timeout=60, what="20 completed")
    await wait_for(lambda: redis_sync.zcard("bull:q:failed") == 1, timeout=30, what="the crash")
    h = redis_sync.hgetall(f"bull:q:{crash.id}")
    assert h["atm"] == "2" and "process died (exit code 9)" in h["failedReason"]
    assert sup.said("restarting in") == 0
