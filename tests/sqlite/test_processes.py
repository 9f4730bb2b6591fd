"""Several worker processes on one SQLite file: no job taken twice, none lost, even when
one is killed or all are restarted. Real processes (tests/faults/worker_proc.py)."""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import Queue

from ..faults.helpers import WorkerProcess
from ..waiting import wait_for

FAST = {"lock_duration": 2.0, "stalled_interval": 1.0, "concurrency": 50}


@pytest.fixture
def procs() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for proc in started:
        proc.stop()


def _completed_counts(path: Path) -> tuple[int, int, int]:
    """(completed jobs, jobs in any other state, sum of attempts_made of completed)."""
    with sqlite3.connect(path) as conn:
        done, atm = conn.execute(
            "SELECT count(*), coalesce(sum(atm), 0) FROM jobs WHERE state = 'completed'"
        ).fetchone()
        other = conn.execute("SELECT count(*) FROM jobs WHERE state != 'completed'").fetchone()[0]
    return int(done), int(other), int(atm)


def _ends(procs: list[WorkerProcess]) -> Counter[str]:
    return Counter(job_id for p in procs for job_id in p.jobs("end"))


async def test_four_processes_complete_20000_jobs_each_exactly_once(
    tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with Queue("q", url=url) as queue:
        for start in range(0, 20_000, 1_000):
            await queue.add_bulk([("n", {"i": i}) for i in range(start, start + 1_000)])
        # Nobody is killed here: a lock of 10 s keeps a process that the loaded machine
        # starves for a few seconds from having its jobs rightly redelivered (once seen in
        # a full run with the 2 s of FAST), which would read as "ran twice".
        for i in range(4):
            procs.append(
                WorkerProcess(url, tmp_path / f"log{i}", **{**FAST, "lock_duration": 10.0})
            )
        await wait_for(
            lambda: _completed_counts(tmp_path / "jobs.db")[0] == 20_000,
            timeout=240,
            what="20,000 completed jobs",
        )
    done, other, atm = _completed_counts(tmp_path / "jobs.db")
    assert (done, other, atm) == (20_000, 0, 20_000)
    ends = _ends(procs)
    assert len(ends) == 20_000 and set(ends.values()) == {1}  # no job ran twice
    assert sum(1 for p in procs if p.jobs("end")) >= 2  # the file was really shared


async def test_a_process_killed_mid_run_loses_nothing(
    tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with Queue("q", url=url) as queue:
        await queue.add_bulk([("n", {"i": i, "sleep": 0.2}) for i in range(1_000)])
        victim = WorkerProcess(url, tmp_path / "victim", **FAST)
        procs.append(victim)
        procs.append(WorkerProcess(url, tmp_path / "other", **FAST))

        def busy() -> bool:
            return len(victim.jobs("end")) >= 20 and len(victim.jobs("start")) > len(
                victim.jobs("end")
            )

        await wait_for(busy, timeout=60, what="the victim at work, with jobs in hand")
        victim.signal(signal.SIGKILL)
        await wait_for(victim.exited, timeout=10, what="the victim to die")
        killed = set(victim.jobs("start")) - set(victim.jobs("end"))
        assert killed, "the victim held jobs when it died"
        await wait_for(
            lambda: _completed_counts(tmp_path / "jobs.db")[0] == 1_000,
            timeout=120,
            what="every job completed",
        )
        for job_id in killed:
            job = await queue.get_job(job_id)
            assert job is not None and job.attempts_started == 2  # it ran again
    assert _completed_counts(tmp_path / "jobs.db")[:2] == (1_000, 0)


async def test_stopping_every_process_and_starting_new_ones_resumes(
    tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with Queue("q", url=url) as queue:
        await queue.add_bulk([("n", {"i": i, "sleep": 0.02}) for i in range(1_500)])
        first = [WorkerProcess(url, tmp_path / f"a{i}", **FAST) for i in range(2)]
        procs.extend(first)
        await wait_for(lambda: len(_ends(first)) >= 100, timeout=60, what="some progress")
        for p in first:
            p.signal(signal.SIGKILL)
        for p in first:
            await wait_for(p.exited, timeout=10, what="the first workers to die")
        assert _completed_counts(tmp_path / "jobs.db")[0] < 1_500
        second = [WorkerProcess(url, tmp_path / f"b{i}", **FAST) for i in range(2)]
        procs.extend(second)
        await wait_for(
            lambda: _completed_counts(tmp_path / "jobs.db")[0] == 1_500,
            timeout=120,
            what="every job completed after the restart",
        )
    assert _completed_counts(tmp_path / "jobs.db")[:2] == (1_500, 0)


async def test_an_idle_worker_in_another_process_picks_up_a_new_job(
    tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    worker = WorkerProcess(url, tmp_path / "log", **FAST)
    procs.append(worker)
    await wait_for(lambda: worker.said("ready"), timeout=30, what="the worker to start")
    async with Queue("q", url=url) as queue:
        job = await queue.add("late", {})
        assert await job.wait_until_finished(timeout=10) == "ok"
    assert worker.jobs("end") == [job.id]
