"""Failures: retries, backoff, unrecoverable errors, custom strategies."""

from __future__ import annotations

import time

import pytest

from dockyard import Backoff, Job, JobFailed, Queue, UnrecoverableError, Worker


async def flaky(job: Job) -> str:
    """Fails while fewer than ``fail_times`` attempts were made, then succeeds."""
    if job.attempts_made < job.data.get("fail_times", 0):
        raise ValueError(f"attempt {job.attempts_made + 1} failed")
    if job.data.get("always"):
        raise RuntimeError("always fails")
    if job.data.get("unrecoverable"):
        raise UnrecoverableError("cannot recover")
    return "ok"


async def test_a_job_that_fails_twice_then_succeeds_completes(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("f", {"fail_times": 2}, attempts=3)
    async with Worker("q", flaky, url=backend_url):
        assert await job.wait_until_finished(timeout=5) == "ok"
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.attempts_made == 3
    assert stored.attempts_started == 3
    assert await stored.get_state() == "completed"


async def test_a_job_that_always_fails_ends_failed_with_reason_and_traces(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("f", {"always": True}, attempts=2)
    async with Worker("q", flaky, url=backend_url):
        with pytest.raises(JobFailed) as caught:
            await job.wait_until_finished(timeout=5)
    assert caught.value.reason == "always fails"
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.failed_reason == "always fails"
    assert stored.attempts_made == 2
    assert len(stored.stacktrace) == 2
    assert "RuntimeError: always fails" in stored.stacktrace[-1]
    assert stored.finished_on is not None
    assert await stored.get_state() == "failed"


async def test_stack_trace_limit_keeps_the_newest_traces(queue: Queue, backend_url: str) -> None:
    job = await queue.add("f", {"always": True}, attempts=3, stack_trace_limit=1)
    async with Worker("q", flaky, url=backend_url):
        with pytest.raises(JobFailed):
            await job.wait_until_finished(timeout=5)
    stored = await queue.get_job(job.id)
    assert stored is not None and len(stored.stacktrace) == 1


async def test_an_unrecoverable_error_fails_at_once(queue: Queue, backend_url: str) -> None:
    job = await queue.add("f", {"unrecoverable": True}, attempts=5)
    async with Worker("q", flaky, url=backend_url):
        with pytest.raises(JobFailed, match="cannot recover"):
            await job.wait_until_finished(timeout=5)
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.attempts_made == 1


@pytest.mark.parametrize("backoff", [Backoff.fixed(0.3), Backoff.exponential(0.3)])
async def test_backoff_puts_the_job_in_delayed_between_attempts(
    queue: Queue, backend_url: str, backoff: Backoff
) -> None:
    job = await queue.add("f", {"fail_times": 1}, attempts=2, backoff=backoff)
    states: list[str] = []
    async with Worker("q", flaky, url=backend_url):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            state = await job.get_state()
            if not states or states[-1] != state:
                states.append(state)
            if state == "completed":
                break
    assert "delayed" in states
    assert states[-1] == "completed"


def test_exponential_backoff_doubles_per_attempt() -> None:
    backoff = Backoff.exponential(1.5)
    assert [backoff.delay_for(n) for n in (1, 2, 3)] == [1.5, 3.0, 6.0]
    assert Backoff.fixed(2).delay_for(5) == 2.0


def test_jitter_stays_within_its_band() -> None:
    backoff = Backoff.exponential(1.0, jitter=0.5)
    delays = {backoff.delay_for(2) for _ in range(200)}
    assert all(1.0 <= d < 2.0 for d in delays)
    assert len(delays) > 1


async def test_a_custom_backoff_strategy_is_used(queue: Queue, backend_url: str) -> None:
    calls: list[tuple[int, str]] = []

    def strategy(attempt: int, error: BaseException, job: Job) -> float:
        calls.append((attempt, str(error)))
        return 0.05

    job = await queue.add("f", {"fail_times": 2}, attempts=3, backoff=Backoff.custom("mine"))
    async with Worker("q", flaky, url=backend_url, backoff_strategies={"mine": strategy}):
        assert await job.wait_until_finished(timeout=5) == "ok"
    assert calls == [(1, "attempt 1 failed"), (2, "attempt 2 failed")]


async def test_a_strategy_that_returns_none_fails_the_job_now(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("f", {"fail_times": 3}, attempts=5, backoff=Backoff.custom("stop"))
    async with Worker("q", flaky, url=backend_url, backoff_strategies={"stop": lambda *a: None}):
        with pytest.raises(JobFailed):
            await job.wait_until_finished(timeout=5)
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.attempts_made == 1
