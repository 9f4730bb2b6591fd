"""Managing jobs and queues: remove, retry, promote, clean, drain, obliterate, change."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from dockyard import (
    InvalidOptionError,
    Job,
    JobFailed,
    JobLockedError,
    JobNotFoundError,
    JobStateError,
    NotSupportedError,
    Queue,
    Worker,
)

from .conftest import wait_for


async def noop(job: Job) -> str:
    return "ok"


async def boom(job: Job) -> None:
    raise RuntimeError("boom")


async def _run_all(url: str, jobs: list[Job], handler=noop) -> None:  # type: ignore[no-untyped-def]
    async with Worker("q", handler, url=url, concurrency=5):
        for job in jobs:
            with contextlib.suppress(JobFailed):
                await job.wait_until_finished(timeout=5)


async def test_remove_deletes_a_waiting_job_and_its_logs(queue: Queue) -> None:
    job = await queue.add("a", {})
    await job.log("line")
    assert await queue.remove(job.id) is True
    assert await queue.get_job(job.id) is None
    assert await queue.get_job_logs(job.id) == []
    assert (await queue.get_job_counts("waiting"))["waiting"] == 0
    assert await queue.remove(job.id) is False


async def test_remove_is_refused_while_a_worker_runs_the_job(
    queue: Queue, backend_url: str
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(job: Job) -> None:
        started.set()
        await release.wait()

    job = await queue.add("a", {})
    async with Worker("q", slow, url=backend_url):
        await asyncio.wait_for(started.wait(), 5)
        with pytest.raises(JobLockedError):
            await queue.remove(job.id)
        with pytest.raises(JobLockedError):
            await job.remove()
        assert await job.get_state() == "active"
        release.set()
        await job.wait_until_finished(timeout=5)


async def test_a_failed_job_retried_runs_again_and_completes(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("a", {})
    await _run_all(backend_url, [job], handler=boom)
    assert await job.get_state() == "failed"
    await job.retry()
    assert await job.get_state() == "waiting"
    fresh = await queue.get_job(job.id)
    assert fresh is not None and fresh.failed_reason is None and fresh.finished_on is None
    await _run_all(backend_url, [job])
    assert await job.get_state() == "completed"
    with pytest.raises(JobStateError):
        await job.retry("failed")


async def test_retry_jobs_moves_every_failed_job_back(queue: Queue, backend_url: str) -> None:
    jobs = [await queue.add("a", {"i": i}) for i in range(4)]
    await _run_all(backend_url, jobs, handler=boom)
    assert await queue.retry_jobs(count=3) == 3
    counts = await queue.get_job_counts("failed", "waiting")
    assert counts == {"failed": 1, "waiting": 3}
    assert await queue.retry_jobs() == 1
    await _run_all(backend_url, jobs)
    assert (await queue.get_job_counts("completed"))["completed"] == 4


async def test_promote_runs_a_delayed_job_now(queue: Queue) -> None:
    job = await queue.add("a", {}, delay=3600)
    await job.promote()
    assert await job.get_state() == "waiting"
    # The refusal says which state was needed (field report #25).
    with pytest.raises(JobStateError, match="is not delayed"):
        await job.promote()
    other = await queue.add("b", {}, delay=3600, priority=3)
    await other.promote()
    assert await other.get_state() == "prioritized"


async def test_promote_jobs_moves_all_delayed_jobs(queue: Queue) -> None:
    for i in range(3):
        await queue.add("a", {"i": i}, delay=3600)
    assert await queue.promote_jobs() == 3
    assert (await queue.get_job_counts("delayed", "waiting")) == {"delayed": 0, "waiting": 3}


async def test_change_delay_moves_the_due_time(queue: Queue, backend_url: str) -> None:
    job = await queue.add("a", {}, delay=3600)
    await job.change_delay(0.05)
    async with Worker("q", noop, url=backend_url):
        assert await job.wait_until_finished(timeout=5) == "ok"
    ready = await queue.add("b", {})
    with pytest.raises(JobStateError, match="is not delayed"):
        await ready.change_delay(10)


async def test_change_priority_reorders_waiting_jobs(queue: Queue, backend_url: str) -> None:
    low = await queue.add("low", {}, priority=10)
    high = await queue.add("high", {}, priority=5)
    await low.change_priority(1)
    order: list[str] = []

    async def record(job: Job) -> None:
        order.append(job.name)

    async with Worker("q", record, url=backend_url, concurrency=1):
        await high.wait_until_finished(timeout=5)
    assert order == ["low", "high"]
    with pytest.raises(InvalidOptionError):
        await low.change_priority(-1)


async def test_update_data_replaces_the_data(queue: Queue) -> None:
    job = await queue.add("a", {"v": 1})
    await job.update_data({"v": 2})
    fresh = await queue.get_job(job.id)
    assert fresh is not None and fresh.data == {"v": 2}
    await queue.remove(job.id)
    with pytest.raises(JobNotFoundError):
        await job.update_data({"v": 3})


async def test_drain_deletes_waiting_jobs_and_keeps_delayed_unless_asked(queue: Queue) -> None:
    for i in range(3):
        await queue.add("a", {"i": i})
    await queue.add("p", {}, priority=2)
    delayed = await queue.add("d", {}, delay=3600)
    assert await queue.drain() == 4
    counts = await queue.get_job_counts("waiting", "prioritized", "delayed")
    assert counts == {"waiting": 0, "prioritized": 0, "delayed": 1}
    assert await queue.drain(delayed=True) == 1
    assert await queue.get_job(delayed.id) is None


async def test_clean_removes_finished_jobs_older_than_the_grace(
    queue: Queue, backend_url: str
) -> None:
    jobs = [await queue.add("a", {"i": i}) for i in range(3)]
    await _run_all(backend_url, jobs)
    assert await queue.clean(3600, state="completed") == []
    removed = await queue.clean(0, limit=2, state="completed")
    assert len(removed) == 2
    assert (await queue.get_job_counts("completed"))["completed"] == 1
    for job_id in removed:
        assert await queue.get_job(job_id) is None


async def test_clean_waiting_jobs_by_age(queue: Queue) -> None:
    jobs = [await queue.add("a", {"i": i}) for i in range(3)]
    removed = await queue.clean(0, state="waiting")
    assert sorted(removed) == sorted(j.id for j in jobs)
    assert await queue.count() == 0


async def test_clean_refuses_bad_input_and_changes_nothing(queue: Queue) -> None:
    await queue.add("a", {})
    with pytest.raises(InvalidOptionError):
        await queue.clean(-1)
    with pytest.raises(InvalidOptionError):
        await queue.clean(0, limit=-5)
    with pytest.raises(InvalidOptionError):
        await queue.clean(0, state="bogus")
    assert await queue.count() == 1


async def test_obliterate_needs_a_paused_queue_then_deletes_everything(queue: Queue) -> None:
    for i in range(5):
        await queue.add("a", {"i": i})
    with pytest.raises(JobStateError):
        await queue.obliterate()
    await queue.pause()
    await queue.obliterate()
    assert await queue.count() == 0
    assert await queue.is_paused() is False
    job = await queue.add("again", {})
    assert await queue.get_job(job.id) is not None


async def test_getters_and_counts(queue: Queue) -> None:
    await queue.add("a", {})
    await queue.add("b", {}, priority=2)
    await queue.add("c", {}, priority=2)
    await queue.add("d", {}, delay=3600)
    assert await queue.count() == 4
    assert [j.name for j in await queue.get_waiting()] == ["a"]
    assert len(await queue.get_prioritized()) == 2
    assert [j.name for j in await queue.get_delayed()] == ["d"]
    assert await queue.get_counts_per_priority(0, 2, 7) == {0: 1, 2: 2, 7: 0}


async def test_get_jobs_refuses_huge_or_reversed_pages(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.get_jobs("waiting", 0, 10_000_000)
    with pytest.raises(InvalidOptionError):
        await queue.get_jobs("waiting", 5, 2)
    with pytest.raises(InvalidOptionError):
        await queue.get_jobs("nope")


async def test_manual_processing_completes_with_the_token(queue: Queue, backend_url: str) -> None:
    from dockyard.backends.base import Lease

    job = await queue.add("a", {})
    fetched = await queue.backend.fetch(Lease(token="manual-1", lock_ms=30_000), 1)
    taken = fetched.jobs[0]
    assert taken.id == job.id
    await taken.move_to_completed({"done": True}, token="manual-1")
    assert await job.get_state() == "completed"
    assert await job.wait_until_finished(timeout=5) == {"done": True}


async def test_get_workers_lists_a_running_worker(queue: Queue, backend_url: str) -> None:
    if backend_url.startswith("sqlite"):
        # The file keeps no worker registry: the backend says so rather than answer [].
        with pytest.raises(NotSupportedError, match="sqlite"):
            await queue.get_workers()
        return
    async with Worker("q", noop, url=backend_url, name="w1"):
        await wait_for(lambda: _has_worker(queue, "w1"), what="the worker to be listed", timeout=10)


async def _has_worker(queue: Queue, name: str) -> bool:
    return any(w.get("worker_name") == name for w in await queue.get_workers())


async def test_list_queues_names_the_queues_of_a_store(queue: Queue, backend_url: str) -> None:
    from dockyard.backends import list_queues

    await queue.add("a", {})
    async with Queue("other", url=backend_url) as other:
        await other.add("b", {})
        assert {"q", "other"} <= set(await list_queues(backend_url))
        assert await list_queues(backend_url, prefix="nothing-here") == []
