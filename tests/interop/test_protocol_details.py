"""Finer protocol points seen from Node: event fields, worker discovery, wake-ups, ordering."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

import redis
from dockyard import Queue, Worker

from .node_harness import arun_node
from .support import (
    BULLMQ_VERSIONS,
    KIND,
    KINDS,
    behave,
    finished_count,
    node_args,
    node_jobs,
    poll_until,
    stream_events,
)

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_events_written_by_dockyard_read_like_bullmq_events(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str, node: Any
) -> None:
    """Node's QueueEvents parses every event of a dockyard worker; fields match BullMQ's."""
    listener = node("events.mjs", node_args(bullmq, redis_url, queue_name, deadline_ms=60_000))
    await listener.await_for(lambda line: line["event"] == "ready")
    added = await arun_node(
        "produce.mjs", node_args(bullmq, redis_url, queue_name, jobs=node_jobs(KINDS))
    )
    ids = dict(zip((k.key for k in KINDS), added[-1]["ids"], strict=True))
    async with Worker(queue_name, behave, url=redis_url, concurrency=4):
        await poll_until(
            lambda: finished_count(redis_sync, queue_name) == len(KINDS),
            timeout=20,
            what="every job finished",
        )
    finals = {ids[k.key] for k in KINDS}
    await poll_until(
        lambda: (
            {e["jobId"] for e in listener.events("completed") + listener.events("failed")} >= finals
        ),
        timeout=15,
        what="QueueEvents saw every job finish",
    )
    assert listener.events("error") == []
    returned = {e["jobId"]: e["returnvalue"] for e in listener.events("completed")}
    assert returned[ids["plain"]] == {"ok": True, "i": 1}
    progress = [e["data"] for e in listener.events("progress") if e["jobId"] == ids["progress"]]
    assert progress == [50, {"step": 2}]

    events = stream_events(redis_sync, queue_name)
    exhausted = [e for e in events if e["event"] == "retries-exhausted"]
    assert exhausted == [
        {"event": "retries-exhausted", "jobId": ids["failing"], "attemptsMade": "2"}
    ]
    failed = {e["jobId"]: e for e in events if e["event"] == "failed"}
    assert failed[ids["failing"]]["failedReason"] == "always fails"
    assert failed[ids["failing"]]["prev"] == "active"
    assert all(e.get("prev") == "waiting" for e in events if e["event"] == "active")
    retry_delays = [
        int(e["delay"]) for e in events if e["event"] == "delayed" and e["jobId"] == ids["retrying"]
    ]
    assert len(retry_delays) == 2  # each backoff: moveToDelayed with the absolute due time
    now_ms = time.time() * 1000
    assert all(now_ms - 60_000 < due < now_ms + 1000 for due in retry_delays)

    lines = await arun_node("inspect.mjs", node_args(bullmq, redis_url, queue_name, ids=[*finals]))
    jobs = {line["id"]: line for line in lines if line["event"] == "job"}
    assert len(jobs[ids["retrying"]]["stacktrace"]) == 2
    assert len(jobs[ids["failing"]]["stacktrace"]) == 2
    assert len(jobs[ids["unrecoverable"]]["stacktrace"]) == 1
    for job in jobs.values():
        assert job["attemptsStarted"] == job["attemptsMade"]
    delayed = jobs[ids["delayed"]]
    assert delayed["processedOn"] >= delayed["timestamp"] + KIND["delayed"].node_opts["delay"]


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_lists_a_running_dockyard_worker(
    bullmq: str, redis_url: str, queue_name: str
) -> None:
    """Queue.getWorkers() in Node finds dockyard's blocking connection by its client name."""

    async def names() -> list[str]:
        lines = await arun_node("inspect.mjs", node_args(bullmq, redis_url, queue_name))
        return next(line["names"] for line in lines if line["event"] == "workers")

    async with Worker(queue_name, behave, url=redis_url, name="dock"):
        found = await poll_until(names, timeout=15, what="Node sees the dockyard worker")
    assert found == [f"bull:{_b64(queue_name)}:w:dock"]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_blocked_node_worker_wakes_on_dockyard_adds(
    bullmq: str, redis_url: str, queue_name: str, node: Any
) -> None:
    """dockyard's adds write the wake-up markers a Node worker blocks on (not its 10 s timeout)."""
    worker = node(
        "work.mjs",
        node_args(bullmq, redis_url, queue_name, drainDelay=30_000, until=2, deadline_ms=30_000),
    )
    await worker.await_for(lambda line: line["event"] == "ready")
    await poll_until(
        lambda: _blocked_on_marker(redis_url, queue_name), timeout=10, what="Node worker blocked"
    )
    # Without a marker Node would sleep out its 10 s block; 4 s leaves room for a slow machine.
    async with Queue(queue_name, url=redis_url) as queue:
        plain = await queue.add("plain", {"i": 1})
        await worker.await_for(lambda line: line.get("id") == plain.id and "state" in line, 4)
        delayed = await queue.add("delayed", {"i": 2}, delay=0.5)
        await worker.await_for(lambda line: line.get("id") == delayed.id and "state" in line, 4)


def _blocked_on_marker(redis_url: str, queue_name: str) -> bool:
    """True once some client of the server is blocked in BZPOPMIN (the Node worker)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return any(c.get("cmd") == "bzpopmin" for c in client.client_list())
    finally:
        client.close()


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_runs_dockyard_jobs_in_bullmq_order(
    bullmq: str, redis_url: str, queue_name: str
) -> None:
    """FIFO, lifo and priorities written by dockyard give Node's order: wait list, then priority."""
    async with Queue(queue_name, url=redis_url) as queue:
        order = [
            ("p3", {"priority": 3}),
            ("f1", {}),
            ("p1", {"priority": 1}),
            ("f2", {}),
            ("lifo", {"lifo": True}),
            ("p1b", {"priority": 1}),
        ]
        for name, opts in order:
            await queue.add(name, {"i": 0}, **opts)
    lines = await arun_node(
        "work.mjs", node_args(bullmq, redis_url, queue_name, until="idle", deadline_ms=30_000)
    )
    ran = [line["name"] for line in lines if line["event"] == "active"]
    assert ran == ["lifo", "f1", "f2", "p1", "p1b", "p3"], json.dumps(lines)
