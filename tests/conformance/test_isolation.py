"""Isolated handlers: each job runs in a child process; crashes and CPU loops stay there."""

from __future__ import annotations

import os

import pytest

from dockyard import InvalidOptionError, JobFailed, Queue, Worker

from ..cli import handlers


async def test_an_isolated_job_runs_in_a_child_and_reports_back(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("a", {"n": 4})
    async with Worker("q", handlers.isolated, url=backend_url, isolate=True):
        result = await job.wait_until_finished(timeout=30)
    assert result["n"] == 4 and result["pid"] != os.getpid()
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.progress == 30
    assert await queue.get_job_logs(job.id) == [f"in child {result['pid']}"]


async def test_a_plain_function_by_name_runs_isolated(queue: Queue, backend_url: str) -> None:
    job = await queue.add("a", {"n": 1})
    async with Worker("q", "tests.cli.handlers:isolated_sync", url=backend_url, isolate=True):
        assert await job.wait_until_finished(timeout=30) == 2


async def test_a_child_that_dies_fails_the_attempt_and_the_job_retries(
    queue: Queue, backend_url: str
) -> None:
    crash = await queue.add("a", {"crash": True}, attempts=2)
    fine = await queue.add("a", {"n": 7})
    async with Worker("q", handlers.isolated, url=backend_url, isolate=True, concurrency=2):
        with pytest.raises(JobFailed, match="process died"):
            await crash.wait_until_finished(timeout=30)
        assert (await fine.wait_until_finished(timeout=30))["n"] == 7
    stored = await queue.get_job(crash.id)
    assert stored is not None and stored.attempts_made == 2  # it was retried once


async def test_a_handler_error_in_a_child_keeps_its_message_and_trace(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("a", {"fail": True})
    async with Worker("q", handlers.isolated, url=backend_url, isolate=True):
        with pytest.raises(JobFailed, match="bad value"):
            await job.wait_until_finished(timeout=30)
    stored = await queue.get_job(job.id)
    assert stored is not None and "ValueError: bad value" in stored.stacktrace[-1]


async def test_a_timeout_kills_a_spinning_child(queue: Queue, backend_url: str) -> None:
    job = await queue.add("a", {"spin": True}, timeout=0.5)
    after = await queue.add("a", {"n": 3})
    async with Worker("q", handlers.isolated, url=backend_url, isolate=True):
        with pytest.raises(JobFailed, match="timed out"):
            await job.wait_until_finished(timeout=30)
        assert (await after.wait_until_finished(timeout=30))["n"] == 3


async def test_isolation_refuses_handlers_a_child_cannot_import(backend_url: str) -> None:
    async def local(job: object) -> None:
        return None

    with pytest.raises(InvalidOptionError):
        Worker("q", local, url=backend_url, isolate=True)
    with pytest.raises(InvalidOptionError):
        Worker("q", "tests.cli.handlers:isolated", url=backend_url)  # a name needs isolate
