"""Helpers of the Redis-only tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import redis
from dockyard import Queue

from ..waiting import wait_for

__all__ = ["events", "wait_for"]


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    """Queue ``q`` with the default prefix ``bull``: keys are ``bull:q:*``."""
    async with Queue("q", url=redis_url) as q:
        yield q


def events(client: redis.Redis, queue: str = "q") -> list[dict[str, Any]]:
    """The queue's event stream as dicts (``event`` plus its fields), oldest first."""
    return [dict(fields) for _, fields in client.xrange(f"bull:{queue}:events")]
