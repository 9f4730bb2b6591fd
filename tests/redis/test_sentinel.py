"""Redis Sentinel: ``redis+sentinel://`` URLs find the primary and follow it through a failover.

Every server is private (a primary, its replica, three sentinels on free loopback ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import redis
from dockyard import (
    BackendUnavailableError,
    FlowProducer,
    InvalidOptionError,
    Job,
    Queue,
    QueueEvents,
    Worker,
)
from dockyard.backends import display_url, open_backend
from dockyard.backends.redis.address import RedisAddress
from dockyard.backends.redis.sentinel import SentinelServiceError
from dockyard.devserver import free_port
from dockyard.errors import BackendRefusedError

from ..cli.test_commands import dockyard
from ..waiting import wait_for
from ..web.conftest import serve
from .sentinels import SERVICE, Sentinels

JOBS = 5000
CHUNK = 250


@pytest.fixture(scope="module")
def sentinels() -> Any:
    """One Sentinel set-up for the tests that do not fail it over."""
    with Sentinels() as group:
        yield group


# -- URLs -------------------------------------------------------------------------------


def test_sentinel_url_names_every_sentinel_the_service_and_the_db() -> None:
    address = RedisAddress.from_url(
        "redis+sentinel://u:p%40ss@h1,h2:26380,[::1]:26381/my-service/3"
        "?sentinel_username=sen&sentinel_password=s3cret"
    )
    assert address.sentinel is not None
    assert address.sentinel.hosts == (("h1", 26379), ("h2", 26380), ("::1", 26381))
    assert address.sentinel.service == "my-service"
    assert (address.sentinel.username, address.sentinel.password) == ("sen", "s3cret")
    assert (address.db, address.username, address.password) == (3, "u", "p@ss")
    assert address.tls is None
    assert str(address) == "redis+sentinel://h1:26379,h2:26380,[::1]:26381/my-service/3"


def test_rediss_sentinel_takes_the_tls_options() -> None:
    address = RedisAddress.from_url("rediss+sentinel://h1/svc?ssl_cert_reqs=none")
    assert address.tls is not None and address.tls.cert_reqs == "none"
    assert address.db == 0 and address.password is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h1:26379", "must name the service"),
        ("redis+sentinel://h1:26379/", "must name the service"),
        ("redis+sentinel://h1:26379/svc/1/2", "must name the service"),
        ("redis+sentinel://h1:26379/svc/x", "database"),
        ("redis+sentinel://h1:26379/svc/1?db=2", "twice"),
        ("redis+sentinel://h1:port/svc", "bad port"),
        ("redis+sentinel://h1:70000/svc", "bad port"),
        ("redis+sentinel://h1,,h2/svc", "empty sentinel"),
        ("redis+sentinel://h1/svc?ssl_cert_reqs=none", "use rediss\\+sentinel"),
        ("redis+sentinel://h1/svc?sentinel_pass=x", "unknown option"),
        ("redis://h1/0?sentinel_password=x", "only apply to redis\\+sentinel"),
    ],
)
def test_bad_sentinel_urls_are_refused_by_name(url: str, says: str) -> None:
    with pytest.raises(InvalidOptionError, match=says):
        RedisAddress.from_url(url)
    with pytest.raises(InvalidOptionError, match=says):
        Queue("q", url=url)


@given(st.text(max_size=60))
def test_any_sentinel_url_parses_or_is_refused_with_invalid_option(tail: str) -> None:
    for scheme in ("redis+sentinel://", "rediss+sentinel://"):
        try:
            address = RedisAddress.from_url(scheme + tail)
        except InvalidOptionError:
            continue
        assert address.sentinel is not None and address.sentinel.service
        assert all(0 < port < 65536 for _, port in address.sentinel.hosts)


def test_printed_sentinel_urls_hide_both_passwords() -> None:
    shown = display_url("redis+sentinel://u:secret@h1,h2/svc?sentinel_password=hush&db=1")
    assert "secret" not in shown and "hush" not in shown
    assert shown == "redis+sentinel://u:***@h1,h2/svc?sentinel_password=***&db=1"


# -- discovery ----------------------------------------------------------------------------


async def test_producer_and_worker_meet_through_the_sentinels(sentinels: Sentinels) -> None:
    url = sentinels.url(dead_first=free_port())  # an unreachable sentinel first: skipped
    done: list[str] = []
    async with (
        Queue("sq", url=url) as queue,
        QueueEvents("sq", url=url, block=0.5),
        Worker("sq", lambda job: job.data["n"] * 2, url=url),
    ):
        job = await queue.add("double", {"n": 21})
        assert await job.wait_until_finished(timeout=20) == 42
        done.append(job.id or "")
    with contextlib.closing(redis.Redis(port=sentinels.primary_port())) as primary:
        assert primary.zscore("bull:sq:completed", done[0]) is not None


async def test_flow_producer_works_through_the_sentinels(sentinels: Sentinels) -> None:
    async with FlowProducer(url=sentinels.url()) as flows:
        tree = await flows.add({"name": "parent", "queue": "fq", "children": [
            {"name": "child", "queue": "fq", "data": {}}]})  # fmt: skip
    with contextlib.closing(redis.Redis(port=sentinels.primary_port())) as primary:
        assert primary.exists(f"bull:fq:{tree.job.id}")


def test_the_cli_adds_and_lists_through_the_sentinels(sentinels: Sentinels) -> None:
    url = sentinels.url()
    added = dockyard("add", "cq", "send", "--data", '{"n": 1}', "--url", url, "--json")
    assert added.returncode == 0, added.stderr
    job_id = json.loads(added.stdout)["id"]
    stats = json.loads(dockyard("stats", "--url", url, "--json").stdout)
    assert stats["cq"]["waiting"] == 1
    with contextlib.closing(redis.Redis(port=sentinels.primary_port())) as primary:
        assert primary.exists(f"bull:cq:{job_id}")


def test_the_http_api_serves_through_the_sentinels(sentinels: Sentinels) -> None:
    served = serve(sentinels.url())
    web = next(served)
    try:
        reply = httpx.post(f"{web.base}/api/v1/queues/wq/jobs", json={"name": "x", "data": {}})
        assert reply.status_code == 202, reply.text
        job = httpx.get(f"{web.base}/api/v1/queues/wq/jobs/{reply.json()['id']}").json()
        assert job["state"] == "waiting"
    finally:
        served.close()


async def test_an_unknown_service_is_a_typed_error_at_once(sentinels: Sentinels) -> None:
    async with Queue("q", url=sentinels.url(service="no-such-service")) as queue:
        with pytest.raises(SentinelServiceError, match="no-such-service") as caught:
            await asyncio.wait_for(queue.add("x", {}), 15)
    assert isinstance(caught.value, BackendRefusedError)
    assert "sentinel monitor" in str(caught.value)


async def test_a_named_server_that_is_a_replica_is_never_written_to(sentinels: Sentinels) -> None:
    """A sentinel naming a replica (a demoted primary) is retried, not trusted: ROLE says
    it is no primary, so after the window the producer gets BackendUnavailableError."""
    assert sentinels.replica is not None
    with contextlib.closing(sentinels.sentinel()) as sentinel:
        sentinel.execute_command(
            "SENTINEL", "MONITOR", "on-replica", "127.0.0.1", sentinels.replica.port, 2
        )
        try:
            url = f"redis+sentinel://127.0.0.1:{sentinels.ports[0]}/on-replica"
            async with Queue("rq", backend=open_backend(url, "rq", retry_for=0.5)) as queue:
                with pytest.raises(BackendUnavailableError, match="not the primary"):
                    await asyncio.wait_for(queue.add("x", {}), 15)
        finally:
            sentinel.execute_command("SENTINEL", "REMOVE", "on-replica")
    with contextlib.closing(redis.Redis(port=sentinels.replica.port)) as replica:
        assert not replica.exists("bull:rq:id")


async def test_no_sentinel_reachable_is_unavailable_after_the_window() -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/svc"
    async with Queue("q", backend=open_backend(url, "q", retry_for=0.3)) as queue:
        with pytest.raises(BackendUnavailableError, match="no sentinel"):
            await asyncio.wait_for(queue.add("x", {}), 15)


# -- failover -----------------------------------------------------------------------------


async def test_a_failover_during_five_thousand_jobs_loses_none_and_repeats_none() -> None:
    """SENTINEL FAILOVER while a producer adds and a worker runs: every job completes once;
    each add either succeeds or raises BackendUnavailableError (then added again by id).

    Replication is asynchronous: a finish the old primary took in its last instant may not
    reach the new one, so that job runs again once the stalled check requeues it (short
    locks here keep that quick); it still completes once in the store (``atm`` is 1)."""
    with Sentinels() as group:
        url = group.url()
        old_primary = group.primary_port()
        unavailable: list[str] = []
        ran: dict[str, int] = {}

        async def add_range(queue: Queue, start: int, stop: int) -> None:
            for first in range(start, stop, CHUNK):
                batch = [("noop", {}, {"job_id": f"j{n}"}) for n in range(first, first + CHUNK)]
                while True:
                    try:
                        await queue.add_bulk(batch)
                        break
                    except BackendUnavailableError as exc:
                        unavailable.append(str(exc))  # the same ids again: nothing doubles

        def handler(job: Job) -> None:
            ran[job.id or ""] = ran.get(job.id or "", 0) + 1

        async with (
            Queue("fo", url=url) as queue,
            Worker(
                "fo",
                handler,
                url=url,
                concurrency=50,
                max_stalled_count=10,
                lock_duration=4,
                stalled_interval=1,
            ),  # fmt: skip
        ):
            await add_range(queue, 0, 2000)
            with contextlib.closing(group.sentinel()) as sentinel:
                assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
            await add_range(queue, 2000, JOBS)  # during the switch
            await wait_for(lambda: group.primary_port() != old_primary, 30, "the switch")
            new_port = group.primary_port()
            with contextlib.closing(redis.Redis(port=new_port, decode_responses=True)) as new:
                await wait_for(lambda: new.zcard("bull:fo:completed") >= JOBS, 90, "all done")
                completed = set(new.zrange("bull:fo:completed", 0, -1))
                assert completed == {f"j{n}" for n in range(JOBS)}
                pipe = new.pipeline()
                for n in range(JOBS):
                    pipe.hget(f"bull:fo:j{n}", "atm")
                attempts = pipe.execute()
                assert attempts == ["1"] * JOBS  # each completed exactly once
                assert new.execute_command("ROLE")[0] == "master"
        assert set(ran) == completed
