"""Text that is not valid Unicode, non-string keys and ids that name queue keys: one typed
error on every store, nothing written, and the store answering afterwards (field report
#1, #2, #3, #21)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard import InvalidJobError, InvalidOptionError, Job, JobFailed, Queue, Worker

BAD = "caf\udce9.txt"  # a file name decoded with surrogateescape


async def _counts(queue: Queue) -> dict[str, int]:
    return {k: v for k, v in (await queue.get_job_counts()).items() if v}


@pytest.mark.parametrize(
    ("name", "data", "options"),
    [
        ("t", {"name": BAD}, {}),
        ("t", [BAD], {}),
        ("t", {BAD: 1}, {}),
        (BAD, {}, {}),
        ("t", {}, {"job_id": "x" + BAD}),
        ("t", {}, {"deduplication": {"id": BAD}}),
    ],
)
async def test_a_lone_surrogate_is_refused_alike_and_the_queue_still_works(
    queue: Queue, name: str, data: Any, options: dict[str, Any]
) -> None:
    """Field report #1 / #21: Redis used to desynchronise its connection, SQLite raised a
    bare UnicodeEncodeError and memory stored it. Now: InvalidJobError, nothing written."""
    first = await queue.add("t", {"n": 1})
    with pytest.raises(InvalidJobError, match="not valid Unicode"):
        await queue.add(name, data, **options)
    third = await queue.add("t", {"n": 3})
    assert int(third.id) == int(first.id) + 1  # the refused add took no id
    assert await _counts(queue) == {"waiting": 2}
    stored = await queue.get_job(third.id)
    assert stored is not None and stored.data == {"n": 3}


async def test_a_lone_surrogate_in_a_queue_name_is_refused(backend_url: str) -> None:
    with pytest.raises(InvalidOptionError, match="not valid Unicode"):
        Queue("q" + BAD, url=backend_url)


@pytest.mark.parametrize("data", [{1: 2}, {"a": {None: 1}}, [{"ok": 1}, {2.5: "x"}], {True: 1}])
async def test_non_string_keys_are_refused_not_turned_into_strings(queue: Queue, data: Any) -> None:
    """Field report #21: ``{1: 2}`` was stored as ``{"1": 2}`` without a word."""
    with pytest.raises(InvalidJobError, match="key"):
        await queue.add("t", data)
    assert await _counts(queue) == {}
    job = await queue.add("t", {"k": 1})
    with pytest.raises(InvalidJobError, match="key"):
        await job.update_data({1: 2})
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.data == {"k": 1}


async def test_data_nested_too_deeply_is_refused(queue: Queue) -> None:
    deep: Any = 1
    for _ in range(600):
        deep = [deep]
    with pytest.raises(InvalidJobError, match="nested too deeply"):
        await queue.add("t", deep)
    assert await _counts(queue) == {}


async def test_a_handler_logging_a_lone_surrogate_gets_a_typed_error_and_others_run(
    queue: Queue, backend_url: str
) -> None:
    """Field report #1 (worker side): the bad log line is refused before anything is sent,
    the handler can go on, and the worker's other jobs are not disturbed."""
    refused: list[BaseException] = []

    async def work(job: Job) -> dict[str, Any]:
        if job.name == "logsur":
            try:
                await job.log("bad \udce9 log")
            except InvalidJobError as exc:
                refused.append(exc)
            with pytest.raises(InvalidJobError):
                await job.update_progress({"file": BAD})
            await job.log("still logging")
        return {"ok": job.data["n"]}

    first = await queue.add("logsur", {"n": 0})
    rest = [await queue.add("ok", {"n": n}) for n in range(1, 4)]
    async with Worker("q", work, url=backend_url, concurrency=2):
        for job in (first, *rest):
            assert await job.wait_until_finished(timeout=10) == {"ok": job.data["n"]}
    assert len(refused) == 1 and "not valid Unicode" in str(refused[0])
    assert await queue.get_job_logs(first.id) == ["still logging"]
    assert await _counts(queue) == {"completed": 4}


async def test_unstorable_results_and_reasons_fail_only_their_job(
    queue: Queue, backend_url: str
) -> None:
    """Field report #1: a handler returning ``{"file": "caf\\udce9.txt"}`` wedged the
    worker. Now that job fails with a clear reason; an exception whose message holds a
    lone surrogate is stored with it escaped; the other jobs complete."""

    async def work(job: Job) -> Any:
        if job.name == "returns":
            return {"file": BAD}
        if job.name == "int-keys":
            return {1: "one"}
        if job.name == "raises":
            raise ValueError(f"cannot open {BAD}")
        return "fine"

    bad_return = await queue.add("returns", {})
    bad_keys = await queue.add("int-keys", {})
    raises = await queue.add("raises", {})
    fine = [await queue.add("fine", {}) for _ in range(3)]
    async with Worker("q", work, url=backend_url, concurrency=2):
        with pytest.raises(JobFailed, match="not valid Unicode"):
            await bad_return.wait_until_finished(timeout=10)
        with pytest.raises(JobFailed, match="int key 1"):
            await bad_keys.wait_until_finished(timeout=10)
        with pytest.raises(JobFailed, match=r"cannot open caf\\udce9\.txt"):
            await raises.wait_until_finished(timeout=10)
        for job in fine:
            assert await job.wait_until_finished(timeout=10) == "fine"
    assert await _counts(queue) == {"completed": 3, "failed": 3}


# -- ids that are key names ----------------------------------------------------------------

#: Ids no job can have: queue key names, keys under them, and a job's own sub-keys.
RESERVED = ["meta", "wait", "id", "events", "de:user:7", "metrics:completed:data", "repeat:x",
            "repeat:x:y", "5:lock", "7:logs", "stalled-check"]  # fmt: skip


async def _paused_queue_with_settings(queue: Queue) -> None:
    await queue.pause()
    await queue.set_global_concurrency(3)
    await queue.set_max_events(50)
    for n in range(3):
        await queue.add("t", {"n": n})


async def _settings_intact(queue: Queue) -> None:
    assert await queue.is_paused()
    assert (await queue.get_global_limits())["concurrency"] == 3
    assert await _counts(queue) == {"paused": 3}


@pytest.mark.parametrize("job_id", RESERVED)
async def test_operations_refuse_ids_that_name_queue_keys(queue: Queue, job_id: str) -> None:
    """Field report #2: ``remove("meta")`` returned True and deleted the paused queue's
    settings. Every operation taking a job id now refuses such ids and changes nothing."""
    await _paused_queue_with_settings(queue)
    with pytest.raises(InvalidJobError, match="cannot be a job id"):
        await queue.remove(job_id)
    with pytest.raises(InvalidJobError, match="cannot be a job id"):
        await queue.get_job(job_id)
    with pytest.raises(InvalidJobError, match="cannot be a job id"):
        await queue.retry_job(job_id)
    with pytest.raises(InvalidJobError, match="cannot be a job id"):
        await queue.get_job_logs(job_id)
    handle = Job(id=job_id, name="t", backend=queue.backend)
    for call in (
        handle.promote(),
        handle.remove(),
        handle.retry(),
        handle.get_state(),
        handle.change_priority(2),
        handle.change_delay(5),
        handle.update_data({"x": 1}),
        handle.update_progress(5),
        handle.log("line"),
    ):
        with pytest.raises(InvalidJobError, match="cannot be a job id"):
            await call
    await _settings_intact(queue)


@pytest.mark.parametrize(
    "job_id", ["de:user:7", "metrics:completed:data", "repeat:x:y", "limiter:a:b", "meta:a:b"]
)
async def test_custom_ids_that_land_on_queue_keys_are_refused_at_add(
    queue: Queue, job_id: str
) -> None:
    """Field report #3: ``job_id="de:user:7"`` was swallowed by a deduplication key and
    ``"metrics:completed:data"`` broke get_metrics."""
    await queue.add("t", {}, deduplication={"id": "user:7"})
    with pytest.raises(InvalidJobError, match="queue's own keys"):
        await queue.add("t", {}, job_id=job_id)
    assert await _counts(queue) == {"waiting": 1}
    assert (await queue.get_metrics("completed"))["count"] == 0


@pytest.mark.parametrize("job_id", ["repeat:daily:1767225600000", "order:42:a", "wait-1"])
async def test_ids_that_only_look_like_keys_still_work(queue: Queue, job_id: str) -> None:
    """A scheduler iteration's id (``repeat:<id>:<millis>``) and other three-part ids."""
    job = await queue.add("t", {"v": 1}, job_id=job_id)
    assert job.id == job_id
    stored = await queue.get_job(job_id)
    assert stored is not None and stored.data == {"v": 1}
    assert await queue.remove(job_id) is True
    assert await queue.get_job(job_id) is None
