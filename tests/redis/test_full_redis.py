"""A Redis at ``maxmemory`` with ``noeviction`` (field report #13): typed errors, and a
handler's failing log call does not cost its job an attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import redis
from dockyard import BackendError, BackendFullError, DockyardError, Job, Queue, Worker
from dockyard.devserver import RedisServer

from ..waiting import wait_for


@pytest.fixture
def small_redis() -> Iterator[RedisServer]:
    """A private server that refuses writes beyond 16 MB (noeviction)."""
    args = ("--maxmemory", "16mb", "--maxmemory-policy", "noeviction")
    with RedisServer(extra_args=args) as server:
        yield server


def _set_maxmemory(port: int, limit: str) -> None:
    """Make the server full at once (a limit below what it uses) or roomy again."""
    with redis.Redis(port=port) as client:
        client.config_set("maxmemory", limit)


async def test_adding_to_a_full_redis_raises_a_typed_error(small_redis: RedisServer) -> None:
    """Field report #13, Details 3: the producer got a raw ReplyError (the CLI printed a
    traceback). Now a BackendFullError (a DockyardError) that says what to do."""
    async with Queue("oom", url=small_redis.url) as queue:
        payload = {"blob": "x" * 200_000}
        for _ in range(200):
            try:
                await queue.add("rec", payload)
            except BackendFullError as exc:
                assert isinstance(exc, BackendError) and isinstance(exc, DockyardError)
                assert "out of memory" in str(exc) and "maxmemory" in str(exc)
                break
        else:
            raise AssertionError("the server never ran out of memory")
        # Reads still work, and the connection is in step.
        waiting = (await queue.get_job_counts("waiting"))["waiting"]
        assert waiting == len(await queue.get_jobs("waiting", 0, 999))
        _set_maxmemory(small_redis.port, "0")
        job = await queue.add("rec", {"seq": 2})
        assert (await queue.get_job_counts("waiting"))["waiting"] == waiting + 1
        assert (await queue.get_job(job.id)) is not None


async def test_a_log_call_refused_by_a_full_redis_does_not_cost_an_attempt(
    small_redis: RedisServer,
) -> None:
    """The handler's ``job.log`` raises BackendFullError; the handler lets it escape. The
    job (attempts=1) is not failed for good: it goes back (delayed, attempt not counted)
    and completes once memory is freed."""
    started = asyncio.Event()
    go = asyncio.Event()
    errors: list[BaseException] = []

    async def work(job: Job) -> str:
        if not errors:
            started.set()
            await go.wait()
            try:
                await job.log("working")
            except DockyardError as exc:
                errors.append(exc)
                raise
        await job.log("working again")
        return "done"

    async with Queue("oom", url=small_redis.url) as queue:
        job = await queue.add("rec", {}, attempts=1)
        async with Worker("oom", work, url=small_redis.url):
            await asyncio.wait_for(started.wait(), 10)
            _set_maxmemory(small_redis.port, "1")  # below anything it uses: full
            go.set()
            await wait_for(lambda: bool(errors), timeout=10, what="the log call to fail")
            assert isinstance(errors[0], BackendFullError)
            await wait_for(lambda: _state_is(job, "delayed"), timeout=10, what="the job to go back")
            _set_maxmemory(small_redis.port, "16mb")
            assert await job.wait_until_finished(timeout=15) == "done"
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert stored.attempts_made == 1  # the refused attempt was not counted
        assert stored.failed_reason is None
        assert await queue.get_job_logs(job.id) == ["working again"]


async def _state_is(job: Job, state: str) -> bool:
    return await job.get_state() == state
