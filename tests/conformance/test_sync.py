"""dockyard.sync: the blocking Queue and QueueEvents, from threads with no event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dockyard import InvalidOptionError, Job, JobFailed, Worker, sync


async def test_sync_queue_adds_reads_and_waits(backend_url: str) -> None:
    async def double(job: Job) -> int:
        return int(job.data["n"]) * 2

    def produce() -> tuple[str, int, dict[str, int]]:
        with sync.Queue("q", url=backend_url) as queue:
            job = queue.add("d", {"n": 21})
            counts = queue.get_job_counts("waiting")
            return job.id, queue.count(), counts

    job_id, count, counts = await asyncio.to_thread(produce)
    assert count == 1 and counts == {"waiting": 1}
    async with Worker("q", double, url=backend_url):

        def wait() -> object:
            with sync.Queue("q", url=backend_url) as queue:
                return queue.wait_until_finished(job_id, timeout=10), queue.get_state(job_id)

        assert await asyncio.to_thread(wait) == (42, "completed")


async def test_sync_queue_is_safe_from_many_threads(backend_url: str) -> None:
    def produce() -> int:
        with sync.Queue("q", url=backend_url) as queue:
            threads = [
                threading.Thread(
                    target=lambda i=i: [queue.add("t", {"i": i, "k": k}) for k in range(20)]
                )  # type: ignore[misc]
                for i in range(5)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return queue.count()

    assert await asyncio.to_thread(produce) == 100


async def test_sync_errors_are_the_same_typed_errors(backend_url: str) -> None:
    async def boom(job: Job) -> None:
        raise RuntimeError("no")

    def bad() -> None:
        with sync.Queue("q", url=backend_url) as queue:
            queue.add("x", {}, attempts=0)

    with pytest.raises(InvalidOptionError):
        await asyncio.to_thread(bad)

    def add() -> str:
        with sync.Queue("q", url=backend_url) as queue:
            return queue.add("x", {}).id

    job_id = await asyncio.to_thread(add)
    async with Worker("q", boom, url=backend_url):

        def wait() -> object:
            with sync.Queue("q", url=backend_url) as queue:
                return queue.wait_until_finished(job_id, timeout=10)

        with pytest.raises(JobFailed, match="no"):
            await asyncio.to_thread(wait)


async def test_sync_queue_events_iterate(backend_url: str) -> None:
    def follow() -> list[str]:
        with (
            sync.QueueEvents("q", url=backend_url) as events,
            sync.Queue("q", url=backend_url) as queue,
        ):
            job = queue.add("x", {})
            names = []
            while len(names) < 2:
                event = events.next(timeout=10)
                assert event is not None
                if event.job_id == job.id:
                    names.append(event.name)
            return names

    assert await asyncio.to_thread(follow) == ["added", "waiting"]
