"""Several worker processes on one PostgreSQL schema: no job taken twice, none lost, even
when one is killed. Real processes (tests/faults/worker_proc.py)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dockyard import Queue
from dockyard.backends.postgres import parse_url

from ..faults.helpers import WorkerProcess
from ..waiting import wait_for

FAST = {"lock_duration": 2.0, "stalled_interval": 1.0, "concurrency": 50}


@pytest.fixture
def procs() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for proc in started:
        proc.stop()


def _completed_counts(url: str) -> tuple[int, int, int]:
    """(completed jobs, jobs in any other state, sum of attempts_made of completed)."""
    conninfo, schema = parse_url(url)
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            f"SELECT count(*) FILTER (WHERE state = 'completed'), "
            f"count(*) FILTER (WHERE state != 'completed'), "
            f"coalesce(sum(atm) FILTER (WHERE state = 'completed'), 0) FROM {schema}.jobs"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _ends(procs: list[WorkerProcess]) -> Counter[str]:
    return Counter(job_id for p in procs for job_id in p.jobs("end"))


async def test_four_processes_complete_20000_jobs_each_exactly_once(
    postgres_url: str, tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    url = postgres_url
    async with Queue("q", url=url) as queue:
        for start in range(0, 20_000, 1_000):
            await queue.add_bulk([("n", {"i": i}) for i in range(start, start + 1_000)])
        # A lock of 10 s: a process the loaded machine starves for a few seconds must not
        # have its jobs rightly redelivered (that would read as "ran twice").
        for i in range(4):
            procs.append(
                WorkerProcess(url, tmp_path / f"log{i}", **{**FAST, "lock_duration": 10.0})
            )
        await wait_for(
            lambda: _completed_counts(url)[0] == 20_000, timeout=240, what="20,000 completed"
        )
    assert _completed_counts(url) == (20_000, 0, 20_000)
    ends = _ends(procs)
    assert len(ends) == 20_000 and set(ends.values()) == {1}  # no job ran twice
    assert sum(1 for p in procs if p.jobs("end")) >= 2  # the queue was really shared


async def test_one_of_three_processes_killed_mid_run_loses_nothing(
    postgres_url: str, tmp_path: Path, procs: list[WorkerProcess]
) -> None:
    url = postgres_url
    async with Queue("q", url=url) as queue:
        await queue.add_bulk([("n", {"i": i, "sleep": 0.2}) for i in range(1_000)])
        victim = WorkerProcess(url, tmp_path / "victim", **FAST)
        procs.append(victim)
        procs.extend(WorkerProcess(url, tmp_path / f"other{i}", **FAST) for i in range(2))

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
            lambda: _completed_counts(url)[0] == 1_000, timeout=120, what="every job completed"
        )
        for job_id in killed:
            job = await queue.get_job(job_id)
            assert job is not None and job.attempts_started == 2  # it ran again
    assert _completed_counts(url)[:2] == (1_000, 0)
