"""What the interop tests share: the job kinds, dockyard's handler for them, and polling.

The handler `behave` mirrors the processor of node/work.mjs, so a job gives the same result
whichever side runs it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard import Backoff, Job, UnrecoverableError

#: BullMQ major versions under test (npm aliases bullmq5 = 5.62.0, bullmq6 = 6.7.0).
BULLMQ_VERSIONS = ["5", "6"]


def node_args(bullmq: str, redis_url: str, queue: str, **extra: Any) -> dict[str, Any]:
    """The common JSON argument of every node/*.mjs script, plus script-specific keys."""
    return {"bullmq": bullmq, "redis": redis_url, "queue": queue, "prefix": "bull", **extra}


async def poll_until(
    check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Call `check` (sync or async) until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


def result_for(data: dict[str, Any]) -> Any:
    """The return value of a job that succeeds: data.result, else {"ok": true, "i": data.i}."""
    if "result" in data:
        return data["result"]
    return {"ok": True, **({"i": data["i"]} if "i" in data else {})}


async def behave(job: Job) -> Any:
    """dockyard's handler doing what job.data.behaviour asks, like node/work.mjs."""
    data = job.data
    if job.attempts_made < data.get("fail_times", 0):
        raise RuntimeError(f"attempt {job.attempts_made + 1} failed")
    behaviour = data.get("behaviour", "ok")
    if behaviour == "fail":
        raise RuntimeError(data.get("message") or "boom")
    if behaviour == "unrecoverable":
        raise UnrecoverableError(data.get("message") or "unrecoverable")
    if behaviour == "progress":
        await job.update_progress(50)
        await job.update_progress({"step": 2})
        await job.log("line 1")
        await job.log("line 2")
    elif behaviour == "sleep":
        await asyncio.sleep(data.get("ms", 0) / 1000)
    elif behaviour == "hang":
        await asyncio.Event().wait()
    elif behaviour != "ok":
        raise ValueError(f"unknown behaviour {behaviour!r}")
    return result_for(data)


@dataclass(frozen=True)
class Kind:
    """One kind of job: how each producer adds it and how it must end."""

    key: str
    data: dict[str, Any]
    node_opts: dict[str, Any]  # BullMQ spelling, milliseconds (Node and Python bullmq)
    dockyard_opts: dict[str, Any]  # dockyard keywords, seconds
    state: str
    attempts_made: int
    failed_reason: str | None = None
    progress: Any = 0
    logs: list[str] = field(default_factory=list)

    @property
    def return_value(self) -> Any:
        return result_for(self.data) if self.state == "completed" else None


KINDS = [
    Kind("plain", {"i": 1}, {}, {}, "completed", 1),
    Kind("delayed", {"i": 2}, {"delay": 300}, {"delay": 0.3}, "completed", 1),
    Kind("prioritized", {"i": 3}, {"priority": 5}, {"priority": 5}, "completed", 1),
    Kind(
        "retrying",
        {"i": 4, "fail_times": 2},
        {"attempts": 3, "backoff": {"type": "fixed", "delay": 100}},
        {"attempts": 3, "backoff": Backoff.fixed(0.1)},
        "completed",
        3,
    ),
    Kind(
        "failing",
        {"i": 5, "behaviour": "fail", "message": "always fails"},
        {"attempts": 2},
        {"attempts": 2},
        "failed",
        2,
        failed_reason="always fails",
    ),
    Kind(
        "unrecoverable",
        {"i": 6, "behaviour": "unrecoverable", "message": "no retry"},
        {"attempts": 3},
        {"attempts": 3},
        "failed",
        1,
        failed_reason="no retry",
    ),
    Kind(
        "progress",
        {"i": 7, "behaviour": "progress"},
        {},
        {},
        "completed",
        1,
        progress={"step": 2},
        logs=["line 1", "line 2"],
    ),
]
KIND = {kind.key: kind for kind in KINDS}


def node_jobs(kinds: list[Kind]) -> list[dict[str, Any]]:
    """The kinds as produce.mjs / add_with_pybullmq job specs (the job name is the kind)."""
    return [{"name": k.key, "data": k.data, "opts": k.node_opts} for k in kinds]


def finished_count(redis_sync: Any, queue: str) -> int:
    """How many jobs of the queue are in `completed` or `failed`."""
    return int(redis_sync.zcard(f"bull:{queue}:completed")) + int(
        redis_sync.zcard(f"bull:{queue}:failed")
    )


def stream_events(redis_sync: Any, queue: str) -> list[dict[str, str]]:
    """All entries of the queue's event stream, oldest first, as field dicts."""
    return [fields for _, fields in redis_sync.xrange(f"bull:{queue}:events")]


def parsed(text: str | None) -> Any:
    """JSON text from a hash field or event (None stays None)."""
    return None if text is None else json.loads(text)
