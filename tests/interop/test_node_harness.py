"""The Node scripts themselves, Node to Node: if these fail, the other interop tests can't tell.

No dockyard here, so a failure points at the harness, npm install or Redis, not at dockyard.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .node_harness import NodeProcess, arun_node

pytestmark = pytest.mark.interop

JOBS = [
    {"name": "plain", "data": {"i": 1}},
    {"name": "retrying", "data": {"i": 2, "fail_times": 1},
     "opts": {"attempts": 2, "backoff": {"type": "fixed", "delay": 50}}},
    {"name": "progress", "data": {"i": 3, "behaviour": "progress"}},
    {"name": "failing", "data": {"i": 4, "behaviour": "fail"}},
]  # fmt: skip


@pytest.mark.parametrize("bullmq", ["5", "6"])
async def test_node_scripts_round_trip(
    bullmq: str, redis_url: str, queue_name: str, node: Callable[[str, dict[str, Any]], NodeProcess]
) -> None:
    """produce.mjs → work.mjs → inspect.mjs, with events.mjs listening throughout."""
    base = {"bullmq": bullmq, "redis": redis_url, "queue": queue_name}
    listener = node("events", {**base, "deadline_ms": 30000})
    await listener.await_for(lambda line: line["event"] == "ready")

    added = await arun_node("produce", {**base, "jobs": JOBS, "bulk": True})
    ids = added[0]["ids"]
    assert len(ids) == len(JOBS)

    worked = await arun_node("work", {**base, "until": len(JOBS), "name": "node-w"})
    finals = {line["id"]: line for line in worked if line.get("state") in ("completed", "failed")}
    assert finals[ids[0]]["returnvalue"] == {"ok": True, "i": 1}
    assert finals[ids[1]]["attemptsMade"] == 2
    assert finals[ids[3]]["failedReason"] == "boom"
    assert worked[-1]["event"] == "summary"

    seen = await arun_node("inspect", {**base, "ids": ids})
    jobs = {line["id"]: line for line in seen if line["event"] == "job"}
    assert [jobs[i]["state"] for i in ids] == ["completed", "completed", "completed", "failed"]
    assert jobs[ids[2]]["progress"] == {"step": 2}
    assert jobs[ids[2]]["logs"] == ["line 1", "line 2"]
    assert jobs[ids[0]]["processedBy"] == "node-w"
    counts = next(line["counts"] for line in seen if line["event"] == "counts")
    assert (counts["completed"], counts["failed"]) == (3, 1)
    stream = next(line["events"] for line in seen if line["event"] == "events")
    assert {"added", "active", "completed", "failed", "progress", "delayed"} <= {
        e["event"] for e in stream
    }
    completed = [e for e in stream if e["event"] == "completed" and e["jobId"] == ids[0]]
    assert json.loads(completed[0]["returnvalue"]) == {"ok": True, "i": 1}

    await listener.await_for(lambda line: line["event"] == "failed" and line["jobId"] == ids[3])
    progress = [line["data"] for line in listener.events("progress")]
    assert progress == [50, {"step": 2}]
    assert listener.events("error") == []
    assert listener.terminate() == 0
