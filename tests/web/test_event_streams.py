"""Event streams and rates: dropped clients leave no store connection behind (field
report #11); jobs/s counts jobs whose results are removed (field report #17)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

import redis
from dockyard import Job

from ..waiting import wait_until
from .conftest import Served, serve
from .test_api import _run_worker_until, client


@pytest.fixture
def redis_site(redis_url: str, redis_sync: redis.Redis) -> Iterator[Served]:
    """On database 5: connecting then takes a SELECT, a step a leaving client can cut."""
    url = redis_url.rsplit("/", 1)[0] + "/5"
    yield from serve(url)


def _clients(r: redis.Redis) -> int:
    return len(r.client_list())


async def _drop_streams(base: str, count: int) -> int:
    """Open ``count`` event streams at once and drop them: a third at once, a third a
    moment later (mid-connect), a third after ": connected". Returns how many connected."""
    parts = urlsplit(base)
    request = (f"GET /api/v1/queues/sse-leak/events HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()  # fmt: skip

    async def one(i: int) -> bool:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(request)
        await writer.drain()
        connected = False
        if i % 3 == 1:
            await asyncio.sleep(0.003 * (i % 40))
        elif i % 3 == 2:
            # Up to ": connected", or a 503 when the loaded store answers too slowly.
            head = await asyncio.wait_for(reader.read(200), 30)
            connected = head.startswith(b"HTTP/1.1 200")
            assert connected or head.startswith(b"HTTP/1.1 503"), head
        writer.close()
        return connected

    return sum(await asyncio.gather(*(one(i) for i in range(count))))


def test_dropped_event_streams_leave_no_redis_connection(
    redis_site: Served, redis_sync: redis.Redis
) -> None:
    """Field report #11: 100 streams dropped early, some before the first byte."""
    with client(redis_site) as http:  # the queue's own connection, opened once
        # A long events stream: each new follower first reads it through to its end.
        for _ in range(2):
            jobs = [{"name": "x"} for _ in range(1000)]
            assert http.post("/queues/sse-leak/jobs", json=jobs).status_code == 202
    baseline = _clients(redis_sync)
    for _ in range(2):
        connected = asyncio.run(_drop_streams(redis_site.base, 100))
        assert connected >= 1
    wait_until(lambda: _clients(redis_sync) == baseline, timeout=60,
               what=f"the Redis clients back to {baseline}")  # fmt: skip
    # And the server still streams.
    with httpx.stream("GET", redis_site.base + "/api/v1/queues/sse-leak/events",
                      timeout=10) as response:  # fmt: skip
        assert next(response.iter_lines()) == ": connected"


def test_jobs_per_second_counts_queues_that_remove_finished_jobs(server: Served) -> None:
    """Field report #17: the rate comes from the events, not from the completed count."""

    async def work(job: Job) -> int:
        return 1

    with client(server) as http:
        http.get("/queues")  # the first look, before the work
        jobs = [{"name": "x", "opts": {"removeOnComplete": True}} for _ in range(20)]
        assert http.post("/queues/roc/jobs", json=jobs).status_code == 202

        def finished() -> bool:
            counts = http.get("/queues/roc/jobs", params={"state": "waiting"}).json()["total"]
            return counts == 0 and not http.get("/queues/roc/jobs", params={"state": "active"}
                                                ).json()["total"]  # fmt: skip

        _run_worker_until(server.url, "roc", work, finished)
        queues = {q["name"]: q for q in http.get("/queues").json()["queues"]}
    assert queues["roc"]["counts"]["completed"] == 0
    # 20 completions counted over the 10 s window (fewer if the run took longer): not 0.
    rate = queues["roc"]["jobs_per_second"]
    assert 0 < rate <= 20 / 10
