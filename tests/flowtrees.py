"""A flow across three queues for the operators' tests (CLI and web), on a real store:
``renders:r1`` (waiting-children) with ``frames:f1`` (completed by a real Worker) and
``frames:f2`` (waiting-children) whose child is ``assets:a1`` (waiting)."""

from __future__ import annotations

import asyncio
import threading

from dockyard import FlowProducer, Job, Queue, Worker

from .waiting import wait_for

#: A name that rich would read as markup: it must be shown as given.
ROOT_NAME = "render [red]all[/red]"


async def make_flow(url: str) -> None:
    """Add the flow and run ``frames:f1`` to completion."""
    async with FlowProducer(url=url) as flows:
        await flows.add({
            "name": ROOT_NAME, "queue": "renders", "opts": {"job_id": "r1"},
            "children": [
                {"name": "frame", "queue": "frames", "data": {"n": 1}, "opts": {"job_id": "f1"}},
                {"name": "frame", "queue": "frames", "data": {"n": 2}, "opts": {"job_id": "f2"},
                 "children": [{"name": "asset", "queue": "assets", "opts": {"job_id": "a1"}}]},
            ],
        })  # fmt: skip

    async def handle(job: Job) -> str:
        return f"frame {job.id}"

    worker = Worker("frames", handle, url=url, drain_delay=0.2)
    running = asyncio.ensure_future(worker.run(handle_signals=False))
    async with Queue("frames", url=url) as frames:

        async def done() -> bool:
            job = await frames.get_job("f1")
            return job is not None and await job.get_state() == "completed"

        await wait_for(done, timeout=15, what="frames:f1 to complete")
    await worker.close()
    await running


def build(url: str) -> None:
    """``make_flow`` from blocking code, on a thread of its own (so that it also works
    beside a loop already running in this thread, such as Playwright's)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(make_flow(url))
        except BaseException as exc:  # handed to the caller below
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        raise AssertionError("building the flow took over 60 s")
    if failures:
        raise failures[0]
