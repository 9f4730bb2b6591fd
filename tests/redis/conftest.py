"""Helpers of the Redis-only tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import redis
from dockyard import Queue


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    """Queue ``q`` with the default prefix ``bull``: keys are ``bull:q:*``."""
    async with Queue("q", url=redis_url) as q:
        yield q


def events(client: redis.Redis, queue: str = "q") -> list[dict[str, Any]]:
    """The queue's event stream as dicts (``event`` plus its fields), oldest first."""
    return [dict(fields) for _, fields in client.xrange(f"bull:{queue}:events")]


async def wait_for(
    predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0, what: str = "it"
) -> None:
    """Poll until ``predicate`` holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
