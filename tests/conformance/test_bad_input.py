"""Bad input gets a clear, typed error and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard import Backoff, InvalidJobError, InvalidOptionError, Queue, Worker


async def _nothing_written(queue: Queue) -> None:
    counts = await queue.get_job_counts()
    assert sum(counts.values()) == 0, counts


@pytest.mark.parametrize("data", [{1, 2}, object(), {"x": float("nan")}, b"bytes"])
async def test_data_that_is_not_json_is_refused(queue: Queue, data: Any) -> None:
    with pytest.raises(InvalidJobError, match="JSON"):
        await queue.add("a", data)
    await _nothing_written(queue)


@pytest.mark.parametrize("job_id", ["12", "0", "-3", "0:x", "a:b", "wait", "meta", "", 12])
async def test_invalid_job_ids_are_refused(queue: Queue, job_id: Any) -> None:
    with pytest.raises(InvalidJobError):
        await queue.add("a", {}, job_id=job_id)
    await _nothing_written(queue)


@pytest.mark.parametrize("job_id", ["order-42", "012", "a:b:c", "-0"])
async def test_ids_bullmq_accepts_are_accepted(queue: Queue, job_id: str) -> None:
    job = await queue.add("a", {}, job_id=job_id)
    assert job.id == job_id


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "unknown job option"),
        ({"delay": -1}, "delay"),
        ({"delay": "soon"}, "delay"),
        ({"delay": 1e308}, "at most"),
        ({"delay": float("inf")}, "delay"),
        ({"backoff": {"type": "fixed", "delay": 1e300}}, "at most"),
        ({"priority": -1}, "priority"),
        ({"priority": 2**21}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"attempts": 0}, "attempts"),
        ({"backoff": {"type": "fixed", "dealy": 1}}, "backoff"),
        ({"backoff": "soon"}, "backoff"),
        ({"remove_on_complete": -2}, "remove_on_complete"),
        ({"remove_on_fail": {"age": -1}}, "age"),
        ({"lifo": "yes"}, "lifo"),
        ({"timeout": 0}, "timeout"),
    ],
)
async def test_bad_options_are_refused(queue: Queue, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        await queue.add("a", {}, **options)
    await _nothing_written(queue)


async def test_a_bad_name_is_refused(queue: Queue) -> None:
    with pytest.raises(InvalidJobError):
        await queue.add("", {})
    await _nothing_written(queue)


async def test_add_bulk_with_one_bad_entry_adds_none(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.add_bulk([("a", {}), ("b", {}, {"priority": -5}), ("c", {})])
    await _nothing_written(queue)


def test_a_queue_name_with_a_colon_is_refused(backend_url: str) -> None:
    with pytest.raises(InvalidOptionError, match="':'"):
        Queue("a:b", url=backend_url)


def test_bad_worker_settings_are_refused(backend_url: str) -> None:
    async def h(job: Any) -> None:
        return None

    with pytest.raises(InvalidOptionError):
        Worker("q", h, url=backend_url, concurrency=0)
    with pytest.raises(InvalidOptionError):
        Worker("q", h, url=backend_url, lock_duration=-1)
    with pytest.raises(InvalidOptionError):
        Worker("q", "not a handler", url=backend_url)  # type: ignore[arg-type]


def test_backoff_constructors_refuse_bad_values() -> None:
    with pytest.raises(InvalidOptionError):
        Backoff.fixed(-1)
    with pytest.raises(InvalidOptionError):
        Backoff.exponential(1, jitter=2)
    with pytest.raises(InvalidOptionError):
        Backoff.custom("")


async def test_progress_must_be_a_number_or_a_dict(queue: Queue) -> None:
    job = await queue.add("a", {})
    with pytest.raises(InvalidOptionError):
        await job.update_progress("half")  # type: ignore[arg-type]
