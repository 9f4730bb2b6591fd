"""Plain ``def`` handlers on the worker's threads: side by side up to ``concurrency``, never
more; thread-local state lasting across jobs; failures and progress from a thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dockyard import Job, JobFailed, Queue, Worker


async def test_plain_handlers_run_side_by_side_up_to_the_concurrency_and_never_more(
    queue: Queue, backend_url: str
) -> None:
    # Each round of four jobs meets at a barrier: it passes only if four run at once.
    barrier = threading.Barrier(4, timeout=20)
    lock = threading.Lock()
    running = 0
    most = 0

    def meet(job: Job) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            barrier.wait()
        finally:
            with lock:
                running -= 1
        return int(job.data["i"])

    jobs = [await queue.add("meet", {"i": i}) for i in range(12)]
    async with Worker("q", meet, url=backend_url, concurrency=4):
        for job in jobs:
            assert await job.wait_until_finished(timeout=30) == job.data["i"]
    assert most == 4


async def test_plain_handlers_keep_thread_local_state_across_the_jobs_of_a_thread(
    queue: Queue, backend_url: str
) -> None:
    local = threading.local()

    def count(job: Job) -> list[Any]:
        local.seen = getattr(local, "seen", 0) + 1
        return [threading.get_ident(), local.seen]

    jobs = [await queue.add("count", {}) for _ in range(40)]
    async with Worker("q", count, url=backend_url, concurrency=2):
        results = [await job.wait_until_finished(timeout=10) for job in jobs]
    per_thread: dict[int, list[int]] = {}
    for ident, seen in results:
        per_thread.setdefault(ident, []).append(seen)
    assert 1 <= len(per_thread) <= 2  # at most `concurrency` threads, reused
    for seen in per_thread.values():  # each thread counted its own jobs, one after another
        assert sorted(seen) == list(range(1, len(seen) + 1))


async def test_a_plain_handler_that_raises_fails_its_job_and_the_next_ones_run(
    queue: Queue, backend_url: str
) -> None:
    def maybe(job: Job) -> str:
        if job.data["bad"]:
            raise ValueError("bad input")
        return "ok"

    bad = await queue.add("m", {"bad": True})
    good = [await queue.add("m", {"bad": False}) for _ in range(5)]
    async with Worker("q", maybe, url=backend_url, concurrency=3):
        with pytest.raises(JobFailed, match="bad input"):
            await bad.wait_until_finished(timeout=10)
        for job in good:
            assert await job.wait_until_finished(timeout=10) == "ok"


async def test_progress_and_logs_from_many_plain_handlers_at_once_are_all_recorded(
    queue: Queue, backend_url: str
) -> None:
    def report(job: Any) -> int:
        job.update_progress(50)
        return int(job.log(f"line {job.data['i']}"))

    jobs = [await queue.add("r", {"i": i}) for i in range(20)]
    async with Worker("q", report, url=backend_url, concurrency=8):
        for job in jobs:
            await job.wait_until_finished(timeout=10)
    for job in jobs:
        stored = await queue.get_job(job.id)
        assert stored is not None and stored.progress == 50
        assert await queue.get_job_logs(job.id) == [f"line {job.data['i']}"]
