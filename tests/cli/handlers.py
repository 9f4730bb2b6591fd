"""Handlers for ``dockyard worker`` in the CLI and supervisor tests (imported by name).

Each appends ``<pid> start|end <job id>`` to the file named by ``$DOCKYARD_TEST_LOG``.
"""

from __future__ import annotations

import asyncio
import os

from dockyard import Job


def _note(text: str) -> None:
    with open(os.environ["DOCKYARD_TEST_LOG"], "a") as log:
        log.write(f"{os.getpid()} {text}\n")


async def record(job: Job) -> str:
    """Sleep ``data["sleep"]`` seconds (default 0) between a start and an end line."""
    _note(f"start {job.id}")
    data = job.data if isinstance(job.data, dict) else {}
    await asyncio.sleep(float(data.get("sleep", 0)))
    _note(f"end {job.id}")
    return "ok"


async def poison(job: Job) -> str:
    """Kill this process for a job with ``data["poison"]``; others complete."""
    _note(f"start {job.id}")
    if isinstance(job.data, dict) and job.data.get("poison"):
        os._exit(17)
    await asyncio.sleep(0.01)
    _note(f"end {job.id}")
    return "ok"


def sync_double(job: Job) -> int:
    """A plain function: runs in the worker's thread pool."""
    return int(job.data["n"]) * 2


routes = {"double": sync_double, "record": record}


async def isolated(job: Job) -> dict[str, object]:
    """For isolated runs: report progress and a log line, return the child's pid."""
    await job.update_progress(30)
    await job.log(f"in child {os.getpid()}")
    if job.data.get("crash"):
        os._exit(9)
    if job.data.get("exit"):
        raise SystemExit(int(job.data["exit"]))
    if job.data.get("fail"):
        raise ValueError("bad value")
    if job.data.get("spin"):
        while True:  # a CPU-bound loop: only killing the child stops it
            pass
    return {"pid": os.getpid(), "n": job.data.get("n")}


def isolated_sync(job: Job) -> int:
    """A plain function in a child: blocking progress, a return value."""
    job.update_progress(50)
    return int(job.data["n"]) + 1
