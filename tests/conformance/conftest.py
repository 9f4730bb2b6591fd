"""Behaviour tests run against every backend: ``backend_url`` names one store per run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from dockyard import Queue

BACKENDS = ["redis"]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str:
    """An empty store of each kind in turn."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    raise AssertionError(request.param)


@pytest.fixture
async def queue(backend_url: str) -> AsyncIterator[Queue]:
    """A queue named ``q`` on the test's store."""
    async with Queue("q", url=backend_url) as q:
        yield q


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
