"""Adding jobs and reading them back."""

from __future__ import annotations

import time

from dockyard import Backoff, Queue


async def test_an_added_job_reads_back_with_every_field(queue: Queue) -> None:
    before = time.time()
    added = await queue.add(
        "send", {"to": "a@b.c", "n": [1, 2]}, attempts=3, backoff=Backoff.fixed(2), priority=0
    )
    job = await queue.get_job(added.id)
    assert job is not None
    assert job.id == added.id
    assert job.name == "send"
    assert job.data == {"to": "a@b.c", "n": [1, 2]}
    assert job.opts.attempts == 3
    assert job.opts.backoff == Backoff.fixed(2)
    assert before - 0.01 <= job.timestamp <= time.time() + 0.01
    assert job.attempts_made == 0
    assert job.progress == 0
    assert job.return_value is None
    assert job.failed_reason is None
    assert job.queue_name == "q"


async def test_automatic_ids_increase(queue: Queue) -> None:
    first = await queue.add("a", {})
    second = await queue.add("b", {})
    assert int(second.id) == int(first.id) + 1


async def test_get_job_of_an_unknown_id_is_none(queue: Queue) -> None:
    assert await queue.get_job("nope") is None


async def test_add_bulk_returns_the_jobs_in_order(queue: Queue) -> None:
    jobs = await queue.add_bulk([("a", {"i": 1}), ("b", {"i": 2}, {"priority": 2}), ("c", None)])
    assert [j.name for j in jobs] == ["a", "b", "c"]
    assert len({j.id for j in jobs}) == 3
    for job in jobs:
        stored = await queue.get_job(job.id)
        assert stored is not None and stored.name == job.name
    assert (await queue.get_job(jobs[1].id)).priority == 2  # type: ignore[union-attr]
    assert (await queue.get_job_counts("waiting", "prioritized")) == {
        "waiting": 2,
        "prioritized": 1,
    }


async def test_a_custom_job_id_is_used_and_a_second_add_changes_nothing(queue: Queue) -> None:
    first = await queue.add("send", {"v": 1}, job_id="order-42")
    again = await queue.add("send", {"v": 2}, job_id="order-42")
    assert first.id == again.id == "order-42"
    stored = await queue.get_job("order-42")
    assert stored is not None and stored.data == {"v": 1}
    assert (await queue.get_job_counts("waiting"))["waiting"] == 1


async def test_queue_level_default_options_apply_under_the_jobs_own(backend_url: str) -> None:
    async with Queue("d", url=backend_url, default_job_options={"attempts": 4}) as q:
        plain = await q.add("a", {})
        own = await q.add("b", {}, attempts=2)
        assert (await q.get_job(plain.id)).opts.attempts == 4  # type: ignore[union-attr]
        assert (await q.get_job(own.id)).opts.attempts == 2  # type: ignore[union-attr]
