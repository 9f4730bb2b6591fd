"""Behaviour tests run against every backend: ``backend_url`` names one store per run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from dockyard import FlowProducer, Queue

from ..waiting import wait_for

__all__ = ["wait_for"]

BACKENDS = ["redis", "sqlite", "memory", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str:
    """An empty store of each kind in turn."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    if request.param == "sqlite":
        tmp = request.getfixturevalue("tmp_path")
        return f"sqlite:///{tmp}/jobs.db"  # a fresh file per test
    if request.param == "memory":
        return f"memory://test-{uuid.uuid4().hex}"  # a fresh store per test
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")  # a fresh schema per test
        return url
    raise AssertionError(request.param)


@pytest.fixture
def flow_backend_url(backend_url: str) -> str:
    """An empty store of each kind in turn (every store implements flows)."""
    return backend_url


@pytest.fixture
def scheduler_backend_url(backend_url: str) -> str:
    """An empty store of each kind (every store keeps job schedulers)."""
    return backend_url


@pytest.fixture
async def queue(backend_url: str) -> AsyncIterator[Queue]:
    """A queue named ``q`` on the test's store."""
    async with Queue("q", url=backend_url) as q:
        yield q


@pytest.fixture
async def flows(flow_backend_url: str) -> AsyncIterator[FlowProducer]:
    """A FlowProducer on the test's store."""
    async with FlowProducer(url=flow_backend_url) as producer:
        yield producer
