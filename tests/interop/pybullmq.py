"""Producer side of the official Python `bullmq` package, for the interop tests.

It shares BullMQ's Lua scripts with Node, so jobs it adds are a third reference producer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


async def add_with_pybullmq(
    redis_url: str, queue: str, jobs: Iterable[dict[str, Any]], prefix: str = "bull"
) -> list[str]:
    """Add `jobs` ({"name", "data", "opts" in BullMQ spelling, ms}) one by one; return their ids."""
    from bullmq import Queue  # imported late: only the interop tests need the package

    producer = Queue(queue, {"connection": redis_url, "prefix": prefix})
    try:
        ids: list[str] = []
        for spec in jobs:
            job = await producer.add(spec["name"], spec.get("data", {}), spec.get("opts") or {})
            ids.append(str(job.id))
        return ids
    finally:
        await producer.close()


async def add_flow_with_pybullmq(
    redis_url: str, tree: dict[str, Any], prefix: str = "bull"
) -> dict[str, Any]:
    """Add `tree` ({"name", "queueName", "data", "opts", "children"}) with the package's
    FlowProducer; the ids it chose, as {"id", "children": [...]}."""
    from bullmq import FlowProducer

    producer = FlowProducer({"connection": redis_url, "prefix": prefix})
    try:
        added = await producer.add(tree)
    finally:
        await producer.close()
    assert added is not None

    def describe(node: dict[str, Any]) -> dict[str, Any]:
        job = node["job"]
        kids = [describe(child) for child in node.get("children") or []]
        return {"id": str(job.id), "children": kids}

    return describe(added)
