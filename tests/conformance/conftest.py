"""Behaviour tests run against every backend: ``backend_url`` names one store per run.

The modules in :data:`ON_CLUSTER` run once more on a 3-primary + 3-replica Redis Cluster
(``cluster``), where every default ``prefix="bull"`` reads ``"{bull}"`` for the test, so
each queue keeps its keys in one slot as BullMQ requires; a caller the switch missed still
uses ``bull`` and is refused (ClusterSlotError), so nothing runs unswitched by mistake.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import dockyard
import dockyard.sync
from dockyard import FlowProducer, Queue
from dockyard.backends import list_queues

from ..rediscluster import PREFIX
from ..waiting import wait_for

__all__ = ["default_prefix", "wait_for"]

BACKENDS = ["redis", "sqlite", "memory", "postgres"]

#: The modules whose tests also run on the session cluster: every one that stores or runs
#: jobs. Left out: test_event_loops (the asyncio/uvloop choice, which a cluster cannot
#: change; its job runs are on one server) and test_public_api (no store).
ON_CLUSTER = frozenset({
    "test_adding", "test_admin", "test_bad_input", "test_dead_letters", "test_deduplication",
    "test_events", "test_flow_fuzz", "test_flow_lifecycle", "test_flows", "test_handlers",
    "test_input_fuzz", "test_isolation", "test_limits", "test_metrics", "test_order",
    "test_retention_pause_shutdown", "test_retries", "test_schedulers", "test_sync",
    "test_text_and_keys", "test_thread_handlers",
})  # fmt: skip


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes ``backend_url`` runs on each store; ON_CLUSTER modules also
    on the cluster."""
    if "backend_url" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    stores = [*BACKENDS, "cluster"] if module in ON_CLUSTER else BACKENDS
    metafunc.parametrize("backend_url", stores, indirect=True)


def _prefixed() -> Iterator[Callable[..., Any]]:
    """Every public callable that takes ``prefix`` (defaulting to ``"bull"``)."""
    for module in (dockyard, dockyard.sync):
        for name in dir(module):
            thing = getattr(module, name)
            if name.startswith("_") or not getattr(thing, "__module__", "").startswith("dockyard"):
                continue
            if inspect.isclass(thing):
                thing = thing.__init__
            if callable(thing) and hasattr(thing, "__code__"):
                yield thing
    yield list_queues


def default_prefix_on_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``prefix``'s default ``{bull}`` in every public callable, until the test ends."""
    for fn in _prefixed():
        keyword = fn.__kwdefaults__ or {}
        if keyword.get("prefix") == "bull":
            monkeypatch.setitem(keyword, "prefix", PREFIX)
        params = list(inspect.signature(fn).parameters.values())
        defaults = fn.__defaults__ or ()
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        names = [p.name for p in positional][len(positional) - len(defaults) :]
        if "prefix" in names and defaults[names.index("prefix")] == "bull":
            patched = list(defaults)
            patched[names.index("prefix")] = PREFIX
            monkeypatch.setattr(fn, "__defaults__", tuple(patched))


def default_prefix() -> str:
    """The prefix a queue gets by default now: ``{bull}`` in a cluster run, else ``bull``
    (for tests that spell a job's full key, ``<prefix>:<queue>:<id>``)."""
    return str(inspect.signature(Queue).parameters["prefix"].default)


@pytest.fixture
def backend_url(request: pytest.FixtureRequest) -> str:
    """An empty store of each kind in turn."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    if request.param == "cluster":
        default_prefix_on_cluster(request.getfixturevalue("monkeypatch"))
        url = request.getfixturevalue("cluster_url")
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
