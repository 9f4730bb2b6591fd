"""What the operators' tools (``dockyard flow``/``schedules``, the HTTP API, the dashboard)
show of flows and job schedulers: plain JSON-ready dicts, the same everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from .backends import resolve_url
from .flow import JobNode
from .job import Job


def not_supported(what: str, url: str | None) -> str:
    """The message for a store that cannot do ``what`` yet (NotSupportedError)."""
    kind = resolve_url(url).split("://", 1)[0] or "this"
    return f"{what} are not available on the {kind} store yet; use a Redis store (redis://...)"


def parent_of(job: Job) -> dict[str, str] | None:
    """The job's parent as ``{"id", "queue"}`` (the queue's name, without the prefix), or
    None; read from the ``parent`` option that dockyard and BullMQ store with a child."""
    parent = job.opts.extra.get("parent")
    if not isinstance(parent, Mapping):
        return None
    parent_id, queue_key = parent.get("id"), parent.get("queue")
    if not isinstance(parent_id, str) or not isinstance(queue_key, str):
        return None
    return {"id": parent_id, "queue": queue_key.rpartition(":")[2]}


async def tree_dict(node: JobNode) -> dict[str, Any]:
    """The tree below ``node`` as ``{"id", "queue", "name", "state", "parent", "children"}``
    (``parent`` on the root only), each job's state read now."""
    flat: list[JobNode] = []
    todo = [node]
    while todo:
        current = todo.pop()
        flat.append(current)
        todo.extend(current.children)
    states = await asyncio.gather(*(n.job.get_state() for n in flat))
    state_of = {id(n): state for n, state in zip(flat, states, strict=True)}

    def build(current: JobNode) -> dict[str, Any]:
        job = current.job
        return {
            "id": job.id,
            "queue": job.queue_name,
            "name": job.name,
            "state": state_of[id(current)],
            "children": [build(child) for child in current.children],
        }

    # Built iteratively above; recursion here is bounded by get_flow's depth (<= 100).
    root = build(node)
    root["parent"] = parent_of(node.job)
    return root


def scheduler_dict(queue: str, scheduler: Any) -> dict[str, Any]:
    """A job scheduler as ``--json`` and the HTTP API show it (times in epoch seconds)."""
    return {
        "queue": queue,
        "id": scheduler.id,
        "name": scheduler.name,
        "every": scheduler.every,
        "pattern": scheduler.pattern,
        "tz": scheduler.tz,
        "next_run": scheduler.next_run,
        "iterations": scheduler.iteration_count,
        "limit": scheduler.limit,
        "start": scheduler.start,
        "end": scheduler.end,
        "offset": scheduler.offset,
        "template": scheduler.template,
    }
