"""``rediss+cluster://``: a cluster whose nodes speak only TLS (clients and cluster bus),
with a private CA made by ``openssl`` in the test (tests/redis/tlspki.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from dockyard import BackendTLSError, Queue, Worker
from dockyard.backends import open_backend
from dockyard.backends.redis.slots import queue_slot

from ..rediscluster import PREFIX, RedisCluster
from .tlspki import make_pki


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """Three TLS-only primaries (no replicas: TLS is what is tested here)."""
    with RedisCluster(replicas=0, pki=make_pki(tmp_path_factory.mktemp("pki"))) as cluster:
        yield cluster


async def test_jobs_run_on_a_tls_cluster(tls_cluster: RedisCluster) -> None:
    url = tls_cluster.url()
    assert url.startswith("rediss+cluster://")
    async with (
        Queue("tq", url=url, prefix=PREFIX) as queue,
        Worker("tq", lambda job: job.data["n"] * 2, url=url, prefix=PREFIX),
    ):
        jobs = [await queue.add("double", {"n": n}) for n in range(5)]
        for job in jobs:
            assert await job.wait_until_finished(timeout=20) == job.data["n"] * 2
    owner = tls_cluster.owner(queue_slot(PREFIX, "tq"))
    with contextlib.closing(tls_cluster.client(owner)) as client:
        assert client.zcard("{bull}:tq:completed") == 5


async def test_a_tls_cluster_without_the_ca_is_refused_at_once(tls_cluster: RedisCluster) -> None:
    """The system's CAs do not trust ours: a typed refusal, not 60 s of retries."""
    url = tls_cluster.url().split("?", 1)[0]
    backend = open_backend(url, "tq", prefix=PREFIX, retry_for=60.0)
    async with Queue("tq", prefix=PREFIX, backend=backend) as queue:
        with pytest.raises(BackendTLSError, match="ssl_ca_certs"):
            await asyncio.wait_for(queue.add("x", {}), 10)
