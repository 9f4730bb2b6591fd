"""QueueEvents: the stream of a queue's events as Python objects."""

from __future__ import annotations

from dockyard import Job, Queue, QueueEvent, QueueEvents, Worker


async def double(job: Job) -> int:
    await job.update_progress(50)
    return int(job.data["n"]) * 2


async def test_events_from_now_show_a_jobs_life(queue: Queue, backend_url: str) -> None:
    async with QueueEvents("q", url=backend_url, block=0.5) as events:
        job = await queue.add("a", {"n": 21})
        async with Worker("q", double, url=backend_url):
            seen: list[QueueEvent] = []
            while not any(e.name == "completed" for e in seen):
                event = await events.next(timeout=10)
                assert event is not None, f"no completed event; saw {seen}"
                if event.job_id == job.id:
                    seen.append(event)
    names = [e.name for e in seen]
    assert names[:2] == ["added", "waiting"]
    assert "active" in names and "progress" in names
    progress = next(e for e in seen if e.name == "progress")
    assert progress.data["progress"] == 50
    completed = seen[-1]
    assert completed.data["return_value"] == 42


async def test_events_before_the_start_are_not_replayed(queue: Queue, backend_url: str) -> None:
    old = await queue.add("old", {})
    async with QueueEvents("q", url=backend_url, block=0.2) as events:
        new = await queue.add("new", {})
        event = await events.next(timeout=5)
        assert event is not None and event.job_id == new.id != old.id


async def test_events_from_the_start_replay_what_the_stream_keeps(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("a", {}, delay=10)
    async with QueueEvents("q", url=backend_url, last_id="0", block=0.2) as events:
        first = await events.next(timeout=5)
        second = await events.next(timeout=5)
    assert first is not None and first.name == "added" and first.job_id == job.id
    assert second is not None and second.name == "delayed"
    assert second.data["due"] > job.timestamp


async def test_callbacks_receive_events(queue: Queue, backend_url: str) -> None:
    got: list[str] = []
    async with QueueEvents("q", url=backend_url, block=0.2) as events:

        async def on_removed(event: QueueEvent) -> None:
            got.append(str(event.job_id))
            await events.close()

        events.on("removed", on_removed)
        job = await queue.add("a", {})
        await queue.remove(job.id)
        await events.run()
    assert got == [job.id]


async def test_the_events_stream_is_capped_to_max_events(queue: Queue, backend_url: str) -> None:
    await queue.set_max_events(50)
    await queue.add_bulk([("a", {"i": i}) for i in range(200)])  # 400 events
    kept = 0
    async with QueueEvents("q", url=backend_url, last_id="0", block=0.1) as events:
        while await events.next(timeout=0.5) is not None:
            kept += 1
    assert 50 <= kept < 250  # Redis trims approximately (MAXLEN ~), the others exactly
