"""A handler that blocks the worker's event loop cannot make any job lose its lock
(field report #8): not the job it runs, and not a job the store handed to the worker
whose reply the blocked loop has not read yet."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from dockyard import Job, Queue, Worker, sync

from ..waiting import wait_for

LOCK = 1.0  # seconds: the blocking handler holds the loop for 3 of these


@pytest.fixture(params=["redis", "sqlite", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of each kind."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    return f"memory://blocked-{uuid.uuid4().hex}"


async def test_a_job_fetched_while_a_handler_blocks_the_loop_keeps_its_lock_and_runs_once(
    store_url: str,
) -> None:
    """Field report #8. Worker 1 (concurrency 2, 1 s locks) runs ``block`` and ``trigger``.
    As ``trigger`` finishes, its slot asks the store to finish it and fetch the next job;
    ``block`` then holds the event loop for 3 s (time.sleep in an async handler), right
    once the store has locked that next job for worker 1 and before worker 1 can read the
    reply. Worker 2 starts then, with a stalled check every 0.2 s, ready to take over any
    job whose lock lapses. Every job must run exactly once, in one attempt."""
    runs: Counter[str] = Counter()
    runs_lock = threading.Lock()
    triggered = asyncio.Event()
    stealer_go = threading.Event()
    stop = threading.Event()

    def count(job: Job) -> None:
        with runs_lock:
            runs[job.id] += 1

    observer = await asyncio.to_thread(sync.Queue, "q", url=store_url)

    def completed() -> int:
        """Asked from the worker's loop, blocking it (the observer has its own loop)."""
        return observer.get_job_counts("completed")["completed"]

    async def block(job: Job) -> str:
        count(job)
        await triggered.wait()
        deadline = time.monotonic() + 5
        # Let the loop send trigger's finish-and-fetch, and stop yielding as soon as the
        # store has done it: the next job is locked for us, and its reply is still unread.
        while completed() < 1:
            assert time.monotonic() < deadline, "trigger's outcome was never stored"
            await asyncio.sleep(0)
        stealer_go.set()
        time.sleep(3 * LOCK)  # noqa: ASYNC251 - blocking the loop is the point
        return "blocked"

    async def trigger(job: Job) -> str:
        count(job)
        triggered.set()
        return "trigger"

    async def quick(job: Job) -> str:
        count(job)
        await asyncio.sleep(0.02)
        return "quick"

    async def any_job(job: Job) -> str:
        count(job)
        await asyncio.sleep(0.02)
        return "stealer"

    def stealer() -> None:
        async def main() -> None:
            await asyncio.to_thread(stealer_go.wait, 20)
            async with Worker(
                "q",
                any_job,
                url=store_url,
                lock_duration=LOCK,
                stalled_interval=0.2,
                drain_delay=0.5,
            ):
                await asyncio.to_thread(stop.wait, 60)

        asyncio.run(main())

    async with Queue("q", url=store_url) as queue:
        jobs = [await queue.add("block", {}), await queue.add("trigger", {})]
        jobs += [await queue.add("quick", {"i": i}) for i in range(4)]
        thread = threading.Thread(target=stealer, daemon=True)
        thread.start()
        try:
            async with Worker(
                "q",
                {"block": block, "trigger": trigger, "quick": quick},
                url=store_url,
                concurrency=2,
                lock_duration=LOCK,
                stalled_interval=0.2,
            ):

                async def all_completed() -> bool:
                    return (await queue.get_job_counts("completed"))["completed"] == len(jobs)

                await wait_for(all_completed, timeout=30, what="every job to complete")
        finally:
            stop.set()
            stealer_go.set()
            await asyncio.to_thread(thread.join, 30)
            await asyncio.to_thread(observer.close)
        assert stealer_go.is_set()
        stored = [await queue.get_job(job.id) for job in jobs]
    assert runs == Counter({job.id: 1 for job in jobs}), runs
    assert all(s is not None and s.attempts_started == 1 for s in stored), [
        (s.id, s.attempts_started) for s in stored if s is not None
    ]
