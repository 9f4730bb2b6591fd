"""``dockyard demo``: a short, finite run through every path a job can take.

It runs on the same store as every other command (the default SQLite file unless --url or
DOCKYARD_URL says otherwise), in a queue of its own that it empties first, so that
``dockyard stats`` and ``dockyard jobs dockyard-demo`` show its jobs afterwards (#20)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from .backends import DEFAULT_URL, display_url, resolve_url
from .backoff import Backoff
from .errors import JobFailed, UnrecoverableError
from .job import Job
from .queue import Queue
from .worker import Worker

QUEUE = "dockyard-demo"


async def handle(job: Job) -> Any:
    """The demo's handler: its behaviour is chosen by the job's name."""
    if job.name == "flaky" and job.attempts_made < 2:
        raise ConnectionError(f"upstream timed out (attempt {job.attempts_made + 1})")
    if job.name == "broken":
        raise ValueError("the payload has no 'to' address")
    if job.name == "forbidden":
        raise UnrecoverableError("account closed: retrying cannot help")
    for step in (25, 50, 100):
        await job.update_progress(step)
    await job.log(f"sent {job.data}")
    return {"delivered": job.data, "attempt": job.attempts_made + 1}


async def run_demo(url: str | None = None, echo: Any = print) -> int:
    """Add jobs of every kind, process them with one worker, print what happened."""
    url = resolve_url(url)
    async with Queue(QUEUE, url=url) as queue:
        await queue.pause()  # the demo's own queue: start from nothing
        await queue.obliterate(force=True)
        started = time.monotonic()
        jobs = [
            await queue.add("email", {"to": "ada@example.com"}),
            await queue.add("email", {"to": "bob@example.com"}, lifo=True),
            await queue.add("report", {"urgent": True}, priority=1),
            await queue.add("report", {"urgent": False}, priority=10),
            await queue.add("reminder", {"in": "1s"}, delay=1.0),
            await queue.add(
                "flaky", {"to": "carol@example.com"}, attempts=3, backoff=Backoff.exponential(0.2)
            ),
            await queue.add("broken", {"to": None}, attempts=2),
            await queue.add("forbidden", {"to": "dave@example.com"}, attempts=5),
        ]
        counts = await queue.get_job_counts("waiting", "prioritized", "delayed")
        echo(f"added {len(jobs)} jobs to {QUEUE!r} on {display_url(url)}: {counts}")
        async with Worker(QUEUE, handle, url=url, concurrency=1, name="demo-worker"):
            for job in jobs:
                with contextlib.suppress(JobFailed):
                    await job.wait_until_finished(timeout=30)
        echo(f"\n{'id':>4}  {'name':<10} {'state':<10} {'tries':>5}  outcome")
        failures = 0
        for added in jobs:
            found = await queue.get_job(added.id)
            assert found is not None
            job = found
            state = await job.get_state()
            if state == "failed":
                failures += 1
                outcome = f"failed: {job.failed_reason}"
            else:
                outcome = f"returned {job.return_value}"
            notes = []
            if added.opts.lifo:
                notes.append("lifo: jumps the line")
            if added.opts.priority:
                notes.append(f"priority {added.opts.priority}")
            if added.opts.delay:
                notes.append(f"delayed {added.opts.delay:g} s")
            if job.attempts_made > 1:
                notes.append("retried")
            extra = f"  ({', '.join(notes)})" if notes else ""
            echo(
                f"{job.id:>4}  {job.name:<10} {state:<10} {job.attempts_made:>5}  {outcome}{extra}"
            )
        order = await queue.get_jobs("completed", asc=True)
        echo("\ncompletion order: " + " ".join(f"{j.id}:{j.name}" for j in order))
        echo(
            f"done in {time.monotonic() - started:.1f} s; {len(jobs) - failures} completed, "
            f"{failures} failed as intended"
        )
        where = "" if url == DEFAULT_URL else f" --url '{url}'"
        echo(f"the jobs stay in the store: dockyard jobs {QUEUE} --state failed{where}")
        return 0 if failures == 2 else 1
