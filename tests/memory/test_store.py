"""The memory store: sharing by URL, threads, events, pause, closing, URL options."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from dockyard import (
    BackendUnavailableError,
    InvalidOptionError,
    Job,
    NotSupportedError,
    Queue,
    Worker,
)
from dockyard.backends import open_backend
from dockyard.backends.memory import MemoryBackend, clock_for, parse_url, reset

from ..waiting import wait_for


async def noop(job: Job) -> str:
    return "ok"


def _backend(queue: Queue) -> MemoryBackend:
    backend = queue.backend
    assert isinstance(backend, MemoryBackend)
    return backend


def test_memory_urls_open_the_memory_backend() -> None:
    backend = open_backend("memory://", "q")
    assert isinstance(backend, MemoryBackend) and backend.kind == "memory"
    assert parse_url("memory://") == ("", None)
    assert parse_url("memory://shared") == ("shared", None)
    assert parse_url("memory://?name=x&clock=manual") == ("x", "manual")


@pytest.mark.parametrize(
    "bad", ["memory://?colour=red", "memory://?clock=fast", "memory://a?name=b"]
)
def test_bad_memory_urls_are_refused(bad: str) -> None:
    with pytest.raises(InvalidOptionError):
        parse_url(bad)


def test_a_store_keeps_its_clock() -> None:
    name = f"c-{uuid.uuid4().hex}"
    MemoryBackend(f"memory://{name}", "q")
    try:
        with pytest.raises(InvalidOptionError, match="system clock"):
            MemoryBackend(f"memory://{name}?clock=manual", "q")
        with pytest.raises(NotSupportedError, match="system clock"):
            clock_for(f"memory://{name}")
        with pytest.raises(NotSupportedError, match=r"memory://.*clock=manual"):
            MemoryBackend(f"memory://{name}", "q").advance(1)
    finally:
        reset(f"memory://{name}")


async def test_queues_and_workers_with_the_same_url_share_one_store(url: str) -> None:
    name = url.split("?")[0]  # no clock option: joins the store whatever its clock
    async with Queue("q", url=url) as producer, Queue("q", url=name) as reader:
        job = await producer.add("a", {"x": 1})
        seen = await reader.get_job(job.id)
        assert seen is not None and seen.data == {"x": 1}
        async with Queue("other", url=url) as other, Queue("q", url=url, prefix="p") as p:
            assert (await other.get_job_counts("waiting"))["waiting"] == 0
            assert await p.get_job(job.id) is None
        async with Worker("q", noop, url=name):
            assert await job.wait_until_finished(timeout=5) == "ok"


async def test_another_name_is_another_store(url: str) -> None:
    async with Queue("q", url=url) as one, Queue("q", url=f"memory://{uuid.uuid4().hex}") as two:
        await one.add("a", {})
        assert (await two.get_job_counts("waiting"))["waiting"] == 0


async def test_data_read_back_is_a_copy(queue: Queue) -> None:
    job = await queue.add("a", {"items": [1]})
    first = await queue.get_job(job.id)
    assert first is not None
    first.data["items"].append(2)
    again = await queue.get_job(job.id)
    assert again is not None and again.data == {"items": [1]}


async def test_adds_from_four_threads_while_a_worker_runs(queue: Queue, url: str) -> None:
    per_thread = 300
    errors: list[BaseException] = []

    def produce(t: int) -> None:
        async def run() -> None:
            async with Queue("q", url=url) as q:
                for i in range(per_thread // 2):
                    await q.add("single", {"t": t, "i": i})
                await q.add_bulk([("bulk", {"t": t, "i": i}) for i in range(per_thread // 2)])

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    async with Worker("q", noop, url=url, concurrency=8):
        threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        await asyncio.to_thread(lambda: [thread.join() for thread in threads])
        assert errors == []

        async def all_done() -> bool:
            counts = await queue.get_job_counts("completed")
            return counts["completed"] == 4 * per_thread

        await wait_for(all_done, what="every job added by the threads")
    ids = {job.id for job in await queue.get_jobs("completed")}
    assert ids == {str(i) for i in range(1, 4 * per_thread + 1)}


async def test_a_worker_in_another_thread_is_woken_by_an_add_here(url: str) -> None:
    results: list[object] = []
    started = threading.Event()

    def consume() -> None:
        async def run() -> None:
            async with Queue("q", url=url) as q, Worker("q", noop, url=url, drain_delay=30):
                started.set()
                job = None
                while job is None:
                    jobs = await q.get_jobs("completed")
                    job = jobs[0] if jobs else None
                    await asyncio.sleep(0.01)
                results.append(job.return_value)

        asyncio.run(run())

    thread = threading.Thread(target=consume)
    thread.start()
    await asyncio.to_thread(started.wait, 5)
    await asyncio.sleep(0.05)  # let the worker block on its (30 s) wait for work
    async with Queue("q", url=url) as q:
        job = await q.add("a", {})
        assert await job.wait_until_finished(timeout=5) == "ok"
    await asyncio.to_thread(thread.join, 5)
    assert results == ["ok"]


async def test_events_have_bullmq_names_and_fields(queue: Queue, url: str) -> None:
    backend = _backend(queue)
    job = await queue.add("a", {"x": 1})
    dup = await queue.add("b", {}, job_id="fixed")
    await queue.add("b", {}, job_id="fixed")
    delayed = await queue.add("c", {}, delay=5)

    async def handler(j: Job) -> dict[str, int]:
        await j.update_progress({"p": 1})
        return {"r": 2}

    async with Worker("q", {"a": handler, "b": noop}, url=url):
        await job.wait_until_finished(timeout=5)
        await dup.wait_until_finished(timeout=5)
    events = [fields for _, fields in await backend.read_events("0")]
    assert events[:2] == [
        {"event": "added", "jobId": job.id, "name": "a"},
        {"event": "waiting", "jobId": job.id},
    ]
    assert {"event": "duplicated", "jobId": "fixed"} in events
    assert {
        "event": "delayed",
        "jobId": delayed.id,
        "delay": str(round(delayed_due(await queue.get_job(delayed.id)))),
    } in events
    assert {"event": "active", "jobId": job.id, "prev": "waiting"} in events
    assert {"event": "progress", "jobId": job.id, "data": '{"p":1}'} in events
    assert {
        "event": "completed",
        "jobId": job.id,
        "returnvalue": '{"r":2}',
        "prev": "active",
    } in events
    assert events[-1] == {"event": "drained"}


def delayed_due(job: Job | None) -> float:
    assert job is not None
    return (job.timestamp + job.delay) * 1000


async def test_read_events_waits_for_the_next_event(queue: Queue) -> None:
    backend = _backend(queue)
    reader = asyncio.create_task(backend.read_events("$", timeout=5))
    await asyncio.sleep(0.01)
    assert not reader.done()
    job = await queue.add("a", {})
    [(event_id, fields)] = (await reader)[:1]
    assert fields == {"event": "added", "jobId": job.id, "name": "a"}
    rest = await backend.read_events(event_id)
    assert rest and rest[0][1]["event"] == "waiting"
    assert await backend.read_events("$", timeout=0.01) == []


async def test_the_event_list_is_capped_like_bullmq_streams(queue: Queue) -> None:
    await queue.add_bulk([("a", {}) for _ in range(6000)])
    events = await _backend(queue).read_events("0", count=100_000)
    assert len(events) == 10_000
    assert events[-1][1] == {"event": "waiting", "jobId": "6000"}


async def test_pausing_moves_waiting_jobs_to_paused_as_bullmq_5(queue: Queue) -> None:
    a = await queue.add("a", {})
    await queue.pause()
    b = await queue.add("b", {})
    assert await queue.get_job_counts("waiting", "paused") == {"waiting": 0, "paused": 2}
    assert await a.get_state() == "waiting"
    assert [j.id for j in await queue.get_jobs("paused")] == [b.id, a.id]
    await queue.resume()
    assert await queue.get_job_counts("waiting", "paused") == {"waiting": 2, "paused": 0}
    assert [j.id for j in await queue.get_jobs("waiting", asc=True)] == [a.id, b.id]


async def test_getters_order_like_redis(queue: Queue) -> None:
    ids = [(await queue.add(f"j{i}", {})).id for i in range(5)]
    assert [j.id for j in await queue.get_jobs("waiting")] == ids[::-1]
    assert [j.id for j in await queue.get_jobs("waiting", 0, 1, asc=True)] == ids[:2]
    assert [j.id for j in await queue.get_jobs("waiting", -2, -1)] == ids[1::-1]
    await queue.add("p3", {}, priority=3)
    await queue.add("p1", {}, priority=1)
    assert [j.name for j in await queue.get_jobs("prioritized", asc=True)] == ["p1", "p3"]


async def test_a_closed_backend_refuses_to_work(url: str) -> None:
    queue = Queue("q", url=url)
    await queue.close()
    with pytest.raises(BackendUnavailableError, match="closed"):
        await queue.add("a", {})


async def test_reset_forgets_a_store(url: str) -> None:
    async with Queue("q", url=url) as queue:
        await queue.add("a", {})
    reset(url)
    async with Queue("q", url=url) as queue:
        assert (await queue.get_job_counts("waiting"))["waiting"] == 0
