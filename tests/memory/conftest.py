"""Fixtures of the memory-only tests: a fresh store per test, on a virtual clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from dockyard import Queue
from dockyard.backends.memory import ManualClock, clock_for, reset


@pytest.fixture
def url() -> Iterator[str]:
    """A store of the test's own, on a manual clock; forgotten afterwards."""
    url = f"memory://t-{uuid.uuid4().hex}?clock=manual"
    yield url
    reset(url)


@pytest.fixture
def clock(url: str) -> ManualClock:
    return clock_for(url)


@pytest.fixture
async def queue(url: str) -> AsyncIterator[Queue]:
    async with Queue("q", url=url) as q:
        yield q
