"""Dead-letter queues: a job that fails for good is copied there, and can be redriven."""

from __future__ import annotations

import pytest

from dockyard import InvalidOptionError, Job, JobFailed, Queue, Worker


async def test_a_job_out_of_attempts_lands_in_its_dead_letter_queue(
    queue: Queue, backend_url: str
) -> None:
    async def boom(job: Job) -> None:
        raise RuntimeError(f"bad input {job.data['n']}")

    job = await queue.add("charge", {"n": 5}, attempts=2, dead_letter_queue="q-dead")
    ok = await queue.add("charge", {"n": 6}, attempts=2)  # no dlq: stays only in failed
    async with Worker("q", boom, url=backend_url):
        for each in (job, ok):
            with pytest.raises(JobFailed):
                await each.wait_until_finished(timeout=10)
    assert await job.get_state() == "failed"  # the failed set keeps it, as BullMQ does
    async with Queue("q-dead", url=backend_url) as dead:
        letters = await dead.get_jobs("waiting")
        assert len(letters) == 1
        letter = letters[0].data
        assert (letter["queue"], letter["job_id"], letter["name"]) == ("q", job.id, "charge")
        assert letter["data"] == {"n": 5} and letter["attempts_made"] == 2
        assert letter["failed_reason"] == "bad input 5"


async def test_redrive_moves_dead_letters_back_to_their_queue(
    queue: Queue, backend_url: str
) -> None:
    calls: list[int] = []

    async def second_time_lucky(job: Job) -> str:
        calls.append(job.data["n"])
        if len(calls) == 1:
            raise RuntimeError("not yet")
        return "ok"

    job = await queue.add("x", {"n": 1}, dead_letter_queue="q-dead")
    async with Worker("q", second_time_lucky, url=backend_url):
        with pytest.raises(JobFailed):
            await job.wait_until_finished(timeout=10)
    async with Queue("q-dead", url=backend_url) as dead:
        assert await dead.redrive_dead_letters() == 1
        assert await dead.count() == 0
    redriven = [j for j in await queue.get_jobs("waiting") if j.data == {"n": 1}]
    assert len(redriven) == 1 and redriven[0].opts.dead_letter_queue == "q-dead"
    async with Worker("q", second_time_lucky, url=backend_url):
        assert await redriven[0].wait_until_finished(timeout=10) == "ok"


async def test_a_bad_dead_letter_queue_name_is_refused(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.add("x", {}, dead_letter_queue="a:b")
    assert await queue.count() == 0
