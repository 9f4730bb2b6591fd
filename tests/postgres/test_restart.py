"""A PostgreSQL crash and restart (immediate shutdown) under a running worker and producer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from dockyard import BackendUnavailableError, Job, Queue, Worker

from ..pgserver import PostgresServer
from ..waiting import wait_for


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A private server of the test's own, to crash at will."""
    with PostgresServer() as server:
        yield server


async def _add_until_done(queue: Queue, names: list[str]) -> None:
    """Add each job, retrying an add that failed while the server was down."""
    for name in names:
        while True:
            try:
                await queue.add(name, {}, job_id=name)
                break
            except BackendUnavailableError:
                await asyncio.sleep(0.1)


async def test_a_worker_carries_on_after_the_server_restarts(own_server: PostgresServer) -> None:
    url = own_server.url(schema="restart")
    runs: Counter[str] = Counter()

    async def handler(job: Job) -> None:
        runs[job.id or ""] += 1
        await asyncio.sleep(0.001)

    before = [f"a{i}" for i in range(300)]
    after = [f"b{i}" for i in range(300)]
    async with Queue("q", url=url) as queue:
        await queue.add_bulk([("x", {}, {"job_id": name}) for name in before])
        worker = Worker(
            "q", handler, url=url, concurrency=10, lock_duration=5.0, stalled_interval=1.0
        )
        async with worker:
            await wait_for(lambda: len(runs) >= 50, timeout=30, what="the worker to start")
            own_server.stop(immediate=True)  # a crash: recovery at the next start
            own_server.start()
            await _add_until_done(queue, after)
            await wait_for(
                lambda: set(runs) >= set(before + after), timeout=120, what="every job to run"
            )
        counts = await queue.get_job_counts("completed", "failed", "active", "waiting")
    assert counts == {"completed": 600, "failed": 0, "active": 0, "waiting": 0}
    # A job runs twice only if its worker lost it in the crash (its finish never reached
    # the server, so the stalled check gave it back); none is completed twice.
    assert sum(runs.values()) - len(runs) <= 10
