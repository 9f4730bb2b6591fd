"""Handlers: async and plain ones, routing by name, return values, progress and logs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from dockyard import Job, JobFailed, Queue, Worker


@pytest.mark.parametrize("value", [{"a": [1, 2]}, [1, "x"], "text", 3.5, None])
async def test_return_values_are_stored_as_json(queue: Queue, backend_url: str, value: Any) -> None:
    async def give(job: Job) -> Any:
        return value

    job = await queue.add("r", {})
    async with Worker("q", give, url=backend_url):
        assert await job.wait_until_finished(timeout=5) == value
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.return_value == value


async def test_a_return_value_that_is_not_json_fails_the_job(
    queue: Queue, backend_url: str
) -> None:
    async def give(job: Job) -> Any:
        return {1, 2}

    job = await queue.add("r", {})
    async with Worker("q", give, url=backend_url):
        with pytest.raises(JobFailed, match="JSON"):
            await job.wait_until_finished(timeout=5)


async def test_a_plain_function_runs_in_a_thread_and_can_report_progress(
    queue: Queue, backend_url: str
) -> None:
    threads: list[str] = []

    def blocking(job: Any) -> str:
        threads.append(threading.current_thread().name)
        job.update_progress(70)
        job.log("from a thread")
        return "done"

    job = await queue.add("s", {})
    async with Worker("q", blocking, url=backend_url):
        assert await job.wait_until_finished(timeout=5) == "done"
    assert threads and threads[0] != threading.main_thread().name
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.progress == 70
    assert await queue.get_job_logs(job.id) == ["from a thread"]


async def test_a_handler_mapping_routes_by_job_name(queue: Queue, backend_url: str) -> None:
    async def one(job: Job) -> str:
        return "one"

    async def two(job: Job) -> str:
        return "two"

    a = await queue.add("one", {})
    b = await queue.add("two", {})
    c = await queue.add("three", {})
    async with Worker("q", {"one": one, "two": two}, url=backend_url):
        assert await a.wait_until_finished(timeout=5) == "one"
        assert await b.wait_until_finished(timeout=5) == "two"
        with pytest.raises(JobFailed, match="no handler for job name 'three'"):
            await c.wait_until_finished(timeout=5)


async def test_progress_and_logs_are_recorded(queue: Queue, backend_url: str) -> None:
    async def work(job: Job) -> None:
        await job.update_progress(10)
        await job.update_progress({"step": 2, "of": 3})
        await job.log("first")
        await job.log("second")

    job = await queue.add("p", {})
    async with Worker("q", work, url=backend_url):
        await job.wait_until_finished(timeout=5)
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.progress == {"step": 2, "of": 3}
    assert await queue.get_job_logs(job.id) == ["first", "second"]


async def test_keep_logs_keeps_only_the_newest_lines(queue: Queue, backend_url: str) -> None:
    async def work(job: Job) -> None:
        for i in range(5):
            await job.log(f"line {i}")

    job = await queue.add("p", {}, keep_logs=2)
    async with Worker("q", work, url=backend_url):
        await job.wait_until_finished(timeout=5)
    assert await queue.get_job_logs(job.id) == ["line 3", "line 4"]


async def test_a_timeout_fails_a_job_that_runs_too_long(queue: Queue, backend_url: str) -> None:
    import asyncio

    async def slow(job: Job) -> None:
        await asyncio.sleep(5)

    job = await queue.add("t", {}, timeout=0.1)
    async with Worker("q", slow, url=backend_url):
        with pytest.raises(JobFailed, match=r"timed out after 0\.1 s"):
            await job.wait_until_finished(timeout=5)


async def test_job_states_over_its_life(queue: Queue, backend_url: str) -> None:
    import asyncio

    gate = asyncio.Event()

    async def hold(job: Job) -> None:
        await gate.wait()

    job = await queue.add("x", {})
    assert await job.get_state() == "waiting"
    prio = await queue.add("y", {}, priority=3)
    assert await prio.get_state() == "prioritized"
    async with Worker("q", hold, url=backend_url):
        from .conftest import wait_for

        async def active() -> bool:
            return await job.get_state() == "active"

        await wait_for(active, what="active")
        gate.set()
        await job.wait_until_finished(timeout=5)
        await prio.wait_until_finished(timeout=5)
    assert await job.get_state() == "completed"
    assert await queue.get_job_counts("completed") == {"completed": 2}


async def test_a_rate_limited_job_goes_back_untouched_and_completes(
    queue: Queue, backend_url: str
) -> None:
    from dockyard import RateLimitError

    runs: list[int] = []
    worker: Worker

    async def limited(job: Job) -> str:
        runs.append(job.attempts_made)
        if len(runs) == 1:
            await worker.rate_limit(0.1)
            raise RateLimitError()
        return "ok"

    job = await queue.add("a", {}, attempts=1)
    worker = Worker("q", limited, url=backend_url)
    async with worker:
        assert await job.wait_until_finished(timeout=10) == "ok"
    fresh = await queue.get_job(job.id)
    assert fresh is not None
    assert runs == [0, 0]  # the limited run did not count as an attempt
    assert (fresh.attempts_made, fresh.attempts_started, fresh.failed_reason) == (1, 2, None)


async def test_a_handler_can_delay_its_own_job_without_using_an_attempt(
    queue: Queue, backend_url: str
) -> None:
    import time

    from dockyard import DelayedError

    runs: list[int] = []

    async def later(job: Job) -> str:
        runs.append(job.attempts_made)
        if len(runs) == 1:
            await job.move_to_delayed(time.time() + 0.1)
            raise DelayedError()
        return "later"

    job = await queue.add("a", {}, attempts=1)
    async with Worker("q", later, url=backend_url):
        assert await job.wait_until_finished(timeout=10) == "later"
    fresh = await queue.get_job(job.id)
    assert fresh is not None and fresh.attempts_made == 1 and runs == [0, 0]


async def test_a_forced_close_puts_active_jobs_back_to_wait_at_once(
    queue: Queue, backend_url: str
) -> None:
    started = asyncio.Event()

    async def forever(job: Job) -> None:
        started.set()
        await asyncio.sleep(3600)

    job = await queue.add("a", {})
    worker = Worker("q", forever, url=backend_url, lock_duration=30)
    runner = asyncio.create_task(worker.run(handle_signals=False))
    await asyncio.wait_for(started.wait(), 5)
    await worker.close(force=True)
    await asyncio.wait_for(runner, 10)
    assert await job.get_state() == "waiting"
    fresh = await queue.get_job(job.id)
    assert fresh is not None and fresh.attempts_made == 0 and fresh.attempts_started == 1


def _exit_3(job: Any) -> None:
    raise SystemExit(3)


def _interrupt(job: Any) -> None:
    raise KeyboardInterrupt


async def _async_exit_3(job: Job) -> None:
    await asyncio.sleep(0)
    raise SystemExit(3)


async def _async_interrupt(job: Job) -> None:
    await asyncio.sleep(0)
    raise KeyboardInterrupt


async def _async_cancelled(job: Job) -> None:
    raise asyncio.CancelledError


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (_async_exit_3, "the handler raised SystemExit(3)"),
        (_async_interrupt, "the handler raised KeyboardInterrupt()"),
        (_async_cancelled, "the handler raised CancelledError()"),
        (_exit_3, "the handler raised SystemExit(3)"),  # a plain def, in a thread
        (_interrupt, "the handler raised KeyboardInterrupt()"),
    ],
)
async def test_a_handler_raising_systemexit_or_keyboardinterrupt_fails_only_that_attempt(
    queue: Queue, backend_url: str, handler: Any, reason: str
) -> None:
    """Field report #10: SystemExit, KeyboardInterrupt (or a CancelledError that is not
    the worker's own) from a handler used to end the worker process. Now the attempt fails
    with the exception as its reason (retried as attempts allow), and the worker goes on
    with its other jobs."""

    async def ok(job: Job) -> str:
        await asyncio.sleep(0.01)
        return "ok"

    bad = await queue.add("bad", {}, attempts=2)
    good = [await queue.add("good", {"i": i}) for i in range(3)]
    async with Worker("q", {"bad": handler, "good": ok}, url=backend_url, concurrency=2):
        with pytest.raises(JobFailed) as failed:
            await bad.wait_until_finished(timeout=10)
        for job in good:
            assert await job.wait_until_finished(timeout=10) == "ok"
    assert reason in str(failed.value)
    stored = await queue.get_job(bad.id)
    assert stored is not None and stored.attempts_made == 2
    assert stored.failed_reason == reason


async def test_an_isolated_handler_raising_systemexit_fails_that_job_and_its_child_goes_on(
    queue: Queue, backend_url: str
) -> None:
    """Field report #10 with isolate=True: the same reason as in process, and the child
    that reported it keeps serving jobs (the next job runs in the same process)."""
    from ..cli import handlers

    bad = await queue.add("a", {"exit": 3})
    after = await queue.add("a", {"n": 1})
    async with Worker("q", handlers.isolated, url=backend_url, isolate=True):
        with pytest.raises(JobFailed, match=r"the handler raised SystemExit\(3\)"):
            await bad.wait_until_finished(timeout=30)
        assert (await after.wait_until_finished(timeout=30))["n"] == 1
    done = await queue.get_job(after.id)
    assert done is not None
    assert await queue.get_job_logs(bad.id) == [f"in child {done.return_value['pid']}"]
