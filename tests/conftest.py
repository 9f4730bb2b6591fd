"""Fixtures shared by every test tier: private redis-servers and PostgreSQL, not the machine's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings

import redis
from dockyard.devserver import RedisServer

from .pgserver import PostgresServer
from .rediscluster import RedisCluster

# Timing is measured in bench/, never asserted in tests: no per-example deadline, which a
# loaded 2-core machine would trip at random.
settings.register_profile("dockyard", deadline=None)
settings.load_profile("dockyard")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the whole run (free loopback port, temp folder)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_sync(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A redis-py client on the session server, for asserting on keys independently."""
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def redis_url(redis_server: RedisServer, redis_sync: redis.Redis) -> str:
    """The session server's URL, emptied (FLUSHALL) before the test."""
    redis_sync.flushall()
    return redis_server.url


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A private server of the test's own, durable (appendonly, fsync always), to kill at will."""
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One private 3-primary + 3-replica Redis Cluster for the whole run (started once)."""
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture
def cluster_url(redis_cluster: RedisCluster) -> str:
    """The session cluster's ``redis+cluster://`` URL, every primary emptied first."""
    redis_cluster.flush()
    return redis_cluster.url()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL for the whole run (free loopback port, temp folder)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL of the session server with a schema of the test's own (created at first use)."""
    return postgres_server.url(schema=f"t_{uuid.uuid4().hex[:16]}")
