"""dockyard.sync: the blocking Queue and QueueEvents, from threads with no event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from dockyard import InvalidOptionError, Job, JobFailed, Worker, sync

from ..waiting import wait_until


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


def _in_forked_child(queue: sync.Queue, url: str) -> int:
    """What a forked child does: add through the Queue it inherited and through a new one;
    0 when both worked and the child's count shows them, else a code saying what failed."""
    signal.alarm(30)  # a hang ends the child (SIGALRM) rather than the test run
    try:
        queue.add("child-inherited", {})
        with sync.Queue("q", url=url) as fresh:
            fresh.add("child-new", {})
            return 0 if fresh.count() == 3 and queue.count() == 3 else 2
    except BaseException:
        return 3


def test_sync_queues_work_in_a_forked_child_and_the_parent_goes_on(backend_url: str) -> None:
    """Field report #9 (gunicorn --preload): after os.fork() the child had no loop thread,
    and every sync call hung. Now the child starts its own loop and connections: both the
    Queue it inherited and a new one add jobs; the parent's Queue still works after."""
    queue = sync.Queue("q", url=backend_url)
    try:
        queue.add("parent-before", {})
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 4
            try:
                code = _in_forked_child(queue, backend_url)
            finally:
                os._exit(code)
        status: list[int] = []

        def reaped() -> bool:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status.append(raw)
            return bool(status)

        try:
            wait_until(reaped, timeout=40, what="the forked child to exit")
        finally:
            if not status:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status[0]) == 0
        queue.add("parent-after", {})
        # The child's jobs are in the parent's store too, except in memory:// (its own copy).
        expected = 2 if backend_url.startswith("memory://") else 4
        assert queue.count() == expected
    finally:
        queue.close()
