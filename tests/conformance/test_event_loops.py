"""dockyard works on uvloop (installed with the ``fast`` extra) as on asyncio's own loop."""

from __future__ import annotations

import asyncio

import uvloop

from dockyard import Job, Queue, Worker


def test_a_job_goes_through_its_life_on_uvloop(backend_url: str) -> None:
    async def scenario() -> tuple[object, str]:
        async def double(job: Job) -> int:
            await job.update_progress(50)
            return int(job.data["n"]) * 2

        async with Queue("uv", url=backend_url) as queue:
            jobs = await queue.add_bulk([("d", {"n": 1}), ("d", {"n": 2})])
            async with Worker("uv", double, url=backend_url, concurrency=2):
                values = [await job.wait_until_finished(timeout=5) for job in jobs]
            return values, await jobs[0].get_state()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        values, state = runner.run(scenario())
    assert values == [2, 4]
    assert state == "completed"
