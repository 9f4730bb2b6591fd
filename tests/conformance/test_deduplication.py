"""Deduplication (BullMQ's ``deduplication`` option) and custom-id idempotency."""

from __future__ import annotations

import asyncio

import pytest

from dockyard import InvalidOptionError, Job, Queue, QueueEvents, Worker


async def noop(job: Job) -> str:
    return "ok"


async def test_a_duplicate_returns_the_unfinished_job(queue: Queue, backend_url: str) -> None:
    first = await queue.add("a", {"v": 1}, deduplication={"id": "user-7"})
    second = await queue.add("a", {"v": 2}, deduplication={"id": "user-7"})
    assert second.id == first.id
    assert await queue.count() == 1
    async with Worker("q", noop, url=backend_url):
        await first.wait_until_finished(timeout=10)
    third = await queue.add("a", {"v": 3}, deduplication={"id": "user-7"})
    assert third.id != first.id  # the key went with the finished job
    assert await queue.count() == 1


async def test_a_ttl_throttles_even_after_the_job_finished(queue: Queue, backend_url: str) -> None:
    first = await queue.add("a", {}, deduplication={"id": "t", "ttl": 3600})
    async with Worker("q", noop, url=backend_url):
        await first.wait_until_finished(timeout=10)
    again = await queue.add("a", {}, deduplication={"id": "t", "ttl": 3600})
    assert again.id == first.id


async def test_an_expired_ttl_lets_a_new_job_in(queue: Queue) -> None:
    first = await queue.add("a", {}, deduplication={"id": "short", "ttl": 0.05})
    await asyncio.sleep(0.1)  # the ttl is what is tested: let it pass
    second = await queue.add("a", {}, deduplication={"id": "short", "ttl": 0.05})
    assert second.id != first.id


async def test_replace_swaps_a_still_delayed_job(queue: Queue, backend_url: str) -> None:
    async with QueueEvents("q", url=backend_url, block=0.2) as events:
        old = await queue.add("a", {"v": 1}, delay=60, deduplication={"id": "d", "replace": True})
        new = await queue.add("a", {"v": 2}, delay=60, deduplication={"id": "d", "replace": True})
        assert new.id != old.id
        assert await queue.get_job(old.id) is None
        assert (await queue.get_job_counts("delayed"))["delayed"] == 1
        seen = []
        while not any(e.name == "deduplicated" for e in seen):
            event = await events.next(timeout=5)
            assert event is not None
            seen.append(event)
    dedup = next(e for e in seen if e.name == "deduplicated")
    assert dedup.job_id == new.id and dedup.data["deduplicated_job_id"] == old.id
    assert any(e.name == "removed" and e.job_id == old.id for e in seen)


async def test_removing_the_job_frees_its_deduplication_id(queue: Queue) -> None:
    first = await queue.add("a", {}, deduplication={"id": "r"})
    await queue.remove(first.id)
    second = await queue.add("a", {}, deduplication={"id": "r"})
    assert second.id != first.id and await queue.count() == 1


async def test_concurrent_adds_of_one_custom_id_make_one_job(queue: Queue) -> None:
    jobs = await asyncio.gather(*(queue.add("a", {"i": i}, job_id="order-1") for i in range(20)))
    assert {j.id for j in jobs} == {"order-1"}
    assert await queue.count() == 1
    stored = await queue.get_job("order-1")
    assert stored is not None and stored.data["i"] == jobs[0].data["i"]


async def test_bad_deduplication_options_are_refused(queue: Queue) -> None:
    for bad in ({"ttl": 5}, {"id": ""}, {"id": "x", "ttl": -1}, {"id": "x", "bogus": 1}, "x"):
        with pytest.raises(InvalidOptionError):
            await queue.add("a", {}, deduplication=bad)
    assert await queue.count() == 0
