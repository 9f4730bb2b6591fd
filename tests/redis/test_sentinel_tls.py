"""``rediss+sentinel://``: sentinels, primary and replica that speak only TLS, with a
private CA made by ``openssl`` in the test (tests/redis/tlspki.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from dockyard import BackendTLSError, Queue, Worker
from dockyard.backends import open_backend

from ..waiting import wait_for
from .sentinels import SERVICE, Sentinels
from .tlspki import Pki, make_pki


@pytest.fixture(scope="module")
def tls_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sentinels]:
    pki: Pki = make_pki(tmp_path_factory.mktemp("pki"))
    with Sentinels(pki) as group:
        yield group


async def test_jobs_run_through_tls_sentinels_and_follow_a_failover(
    tls_sentinels: Sentinels,
) -> None:
    url = tls_sentinels.url()
    assert url.startswith("rediss+sentinel://")
    old = tls_sentinels.primary_port()
    async with (
        Queue("tq", url=url) as queue,
        Worker("tq", lambda job: job.data["n"] + 1, url=url),
    ):
        first = await queue.add("inc", {"n": 1})
        assert await first.wait_until_finished(timeout=20) == 2
        with contextlib.closing(tls_sentinels.sentinel()) as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        await wait_for(lambda: tls_sentinels.primary_port() != old, 30, "the switch")
        second = await queue.add("inc", {"n": 2})
        assert await second.wait_until_finished(timeout=30) == 3
    with contextlib.closing(tls_sentinels.client(tls_sentinels.primary_port())) as primary:
        assert primary.execute_command("ROLE")[0] == "master"
        assert primary.zcard("bull:tq:completed") == 2


async def test_tls_sentinels_without_the_ca_are_refused_at_once(
    tls_sentinels: Sentinels,
) -> None:
    """The system's CAs do not trust ours: a typed refusal, not 60 s of retries."""
    url = tls_sentinels.url().split("?", 1)[0]
    async with Queue("tq", backend=open_backend(url, "tq", retry_for=60.0)) as queue:
        with pytest.raises(BackendTLSError, match="ssl_ca_certs"):
            await asyncio.wait_for(queue.add("x", {}), 10)

