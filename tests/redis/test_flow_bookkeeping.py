"""Flow bookkeeping on BullMQ's keys: refusals of parents with unfinished children (-4/-9),
deletion of children, and the step-job pattern (bullmq-flows-schedulers.md A.4-A.6)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import redis
from dockyard import (
    FailedChildrenError,
    InvalidOptionError,
    Job,
    JobStateError,
    PendingChildrenError,
    Queue,
    WaitingChildrenError,
    Worker,
)
from dockyard.backends.base import Lease

from ..interop.node_harness import arun_node
from ..interop.support import BULLMQ_VERSIONS, node_args
from .conftest import events, wait_for


async def _fetch_one(queue: Queue, token: str = "tok-1") -> Job:
    fetched = await queue.backend.fetch(Lease(token, 30_000, None), 1)
    assert len(fetched.jobs) == 1
    return fetched.jobs[0]


def _parent_waiting(r: redis.Redis, queue: str, pid: str, **fields: str) -> str:
    """A parent job hash in ``queue``'s waiting-children, as Node's addParentJob leaves it."""
    now = str(int(time.time() * 1000))
    hash_fields = {"name": "parent", "data": "{}", "opts": "{}", "timestamp": now, "delay": "0",
                   "priority": "0", **fields}  # fmt: skip
    r.hset(f"bull:{queue}:{pid}", mapping=hash_fields)
    r.zadd(f"bull:{queue}:waiting-children", {pid: int(now)})
    return f"bull:{queue}:{pid}"


def _attach(r: redis.Redis, child: Job, queue: str, parent_queue: str, pid: str) -> str:
    """Make ``child`` a child of ``pid`` (no failure flag), as Node's child add does."""
    key = f"bull:{queue}:{child.id}"
    parent = json.dumps({"id": pid, "queueKey": f"bull:{parent_queue}"})
    r.hset(key, mapping={"parentKey": f"bull:{parent_queue}:{pid}", "parent": parent})
    r.sadd(f"bull:{parent_queue}:{pid}:dependencies", key)
    return key


async def test_completing_a_parent_with_pending_children_is_refused_and_changes_nothing(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    """-4: the job keeps its lock and stays active; failing it is still allowed."""
    added = await queue.add("p", {})
    redis_sync.sadd(f"bull:q:{added.id}:dependencies", "bull:c:1", "bull:c:2")
    job = await _fetch_one(queue)
    with pytest.raises(PendingChildrenError, match="still has 2 pending children"):
        await job.move_to_completed({"done": True})
    assert isinstance(PendingChildrenError("x"), JobStateError)
    assert redis_sync.lrange("bull:q:active", 0, -1) == [job.id]
    assert redis_sync.get(f"bull:q:{job.id}:lock") == "tok-1"
    assert redis_sync.zcard("bull:q:completed") == 0
    assert redis_sync.hget(f"bull:q:{job.id}", "returnvalue") is None
    await job.move_to_failed("gave up")
    assert redis_sync.zscore("bull:q:failed", job.id) is not None


async def test_completing_a_parent_with_a_fail_parent_child_is_refused(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    """-9: a child failed with failParentOnFailure; the parent can only fail."""
    added = await queue.add("p", {})
    redis_sync.zadd(f"bull:q:{added.id}:unsuccessful", {"bull:c:1": 1})
    job = await _fetch_one(queue)
    with pytest.raises(FailedChildrenError, match="fail_parent_on_failure"):
        await job.move_to_completed(1)
    assert redis_sync.lrange("bull:q:active", 0, -1) == [job.id]
    assert redis_sync.zcard("bull:q:completed") == 0


@pytest.mark.parametrize(
    ("kind", "attempts_made"), [("pending", 3), ("failed child", 1)]
)  # fmt: skip
async def test_a_worker_fails_a_parent_whose_completion_is_refused(
    kind: str, attempts_made: int, queue: Queue, redis_sync: redis.Redis, redis_url: str
) -> None:
    """Pending children: an ordinary failed attempt (retried); a failed child: no retry."""
    added = await queue.add("p", {}, attempts=3)
    if kind == "pending":
        redis_sync.sadd(f"bull:q:{added.id}:dependencies", "bull:c:1")
        reason = "pending children"
    else:
        redis_sync.zadd(f"bull:q:{added.id}:unsuccessful", {"bull:c:1": 1})
        reason = "fail_parent_on_failure"
    async with Worker("q", lambda job: "value", url=redis_url):
        await wait_for(
            lambda: redis_sync.zscore("bull:q:failed", added.id) is not None,
            timeout=10,
            what="the parent failed",
        )
    job = await queue.get_job(added.id)
    assert job is not None and job.failed_reason is not None
    assert reason in job.failed_reason
    assert job.attempts_made == attempts_made
    assert job.return_value is None


@pytest.mark.parametrize("remove_on_fail", [True, False])
async def test_a_failed_child_without_policy_releases_its_parent_only_when_removed(
    remove_on_fail: bool, redis_url: str, redis_sync: redis.Redis
) -> None:
    """A.5 retention interplay: removeOnFail deletes the child, which resolves the
    dependency and pushes the parent to wait (priority ignored, as BullMQ)."""
    parent_key = _parent_waiting(redis_sync, "pq", "p1", priority="5")
    async with Queue("cq", url=redis_url) as children:
        child = await children.add("c", {}, remove_on_fail=remove_on_fail)
        child_key = _attach(redis_sync, child, "cq", "pq", "p1")

        def boom(job: Job) -> None:
            raise RuntimeError("child broke")

        async with Worker("cq", boom, url=redis_url):
            await wait_for(
                lambda: any(e.get("event") == "failed" for e in events(redis_sync, "cq")),
                timeout=10,
                what="the child failed",
            )
    if remove_on_fail:
        assert redis_sync.exists(child_key) == 0
        assert redis_sync.lrange("bull:pq:wait", 0, -1) == ["p1"]
        assert redis_sync.zcard("bull:pq:waiting-children") == 0
        assert redis_sync.exists(parent_key + ":dependencies") == 0
        assert events(redis_sync, "pq")[-1] == {
            "event": "waiting", "jobId": "p1", "prev": "waiting-children"
        }  # fmt: skip
        assert redis_sync.zscore("bull:pq:marker", "0") == 0
    else:
        assert redis_sync.zscore("bull:cq:failed", child.id) is not None
        assert redis_sync.smembers(parent_key + ":dependencies") == {child_key}
        assert redis_sync.zscore("bull:pq:waiting-children", "p1") is not None
        assert redis_sync.llen("bull:pq:wait") == 0


async def test_removing_the_last_pending_child_releases_its_parent(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    parent_key = _parent_waiting(redis_sync, "pq", "p1")
    async with Queue("cq", url=redis_url) as children:
        first = await children.add("c", {})
        second = await children.add("c", {})
        _attach(redis_sync, first, "cq", "pq", "p1")
        second_key = _attach(redis_sync, second, "cq", "pq", "p1")
        await first.remove()
        assert redis_sync.smembers(parent_key + ":dependencies") == {second_key}
        assert redis_sync.zscore("bull:pq:waiting-children", "p1") is not None
        await children.remove(second.id)
    assert redis_sync.lrange("bull:pq:wait", 0, -1) == ["p1"]
    assert redis_sync.zcard("bull:pq:waiting-children") == 0


async def test_completing_a_child_records_its_value_and_keeps_it_after_retention(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    """A.4: ``:processed`` gets the value (JSON text); removeOnComplete keeps the entry."""
    parent_key = _parent_waiting(redis_sync, "pq", "p1")
    async with Queue("cq", url=redis_url) as children, Queue("pq", url=redis_url) as parents:
        child = await children.add("c", {}, remove_on_complete=True)
        child_key = _attach(redis_sync, child, "cq", "pq", "p1")
        async with Worker("cq", lambda job: {"n": [1, 2]}, url=redis_url):
            await wait_for(
                lambda: redis_sync.llen("bull:pq:wait") == 1, timeout=10, what="parent released"
            )
        assert redis_sync.exists(child_key) == 0
        assert redis_sync.hgetall(parent_key + ":processed") == {child_key: '{"n":[1,2]}'}
        parent = await parents.get_job("p1")
        assert parent is not None
        assert await parent.get_children_values() == {child_key: {"n": [1, 2]}}
        assert await parent.get_dependencies() == {
            "processed": {child_key: {"n": [1, 2]}}, "unprocessed": [], "failed": [],
            "ignored": {},
        }  # fmt: skip
        assert await parent.get_dependencies_count() == {
            "processed": 1, "unprocessed": 0, "ignored": 0, "failed": 0
        }  # fmt: skip
        assert await parent.get_failed_children_values() == {}


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_step_job_waits_for_a_node_added_child_then_reads_its_value(
    bullmq: str, redis_url: str, redis_sync: redis.Redis
) -> None:
    """moveToWaitingChildren (A.6): the handler adds a child with Node BullMQ, parks its
    job, and runs again once the child completed."""
    moves: list[bool] = []

    async def step(job: Job) -> Any:
        if job.data.get("step", 0) == 0:
            parent = {"id": job.id, "queue": "bull:sq"}
            spec = {"name": "kid", "data": {}, "opts": {"parent": parent}}
            await arun_node("produce.mjs", node_args(bullmq, redis_url, "kq", jobs=[spec]))
            await job.update_data({"step": 1})
            moved = await job.move_to_waiting_children()
            moves.append(moved)
            if moved:
                raise WaitingChildrenError()
        return {"kids": await job.get_children_values()}

    async with Queue("sq", url=redis_url) as steps:
        added = await steps.add("step", {"step": 0})
        async with Worker("sq", step, url=redis_url):
            await wait_for(
                lambda: redis_sync.zscore("bull:sq:waiting-children", added.id) is not None,
                timeout=20,
                what="the step job in waiting-children",
            )
            assert redis_sync.exists(f"bull:sq:{added.id}:lock") == 0
            assert redis_sync.llen("bull:sq:active") == 0
            [kid_key] = redis_sync.smembers(f"bull:sq:{added.id}:dependencies")
            async with Worker("kq", lambda job: f"kid of {job.data}", url=redis_url):
                done = await added.wait_until_finished(timeout=20)
    assert moves == [True]
    assert done == {"kids": {kid_key: "kid of {}"}}
    assert any(
        e == {"event": "waiting-children", "jobId": added.id, "prev": "active"}
        for e in events(redis_sync, "sq")
    )


async def test_move_to_waiting_children_with_nothing_pending_keeps_the_job(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    """Reply 1: nothing pending (or the named child is not pending): the job stays active."""
    added = await queue.add("p", {})
    redis_sync.sadd(f"bull:q:{added.id}:dependencies", "bull:c:1")
    job = await _fetch_one(queue)
    assert await job.move_to_waiting_children(child_key="bull:c:other") is False
    assert redis_sync.lrange("bull:q:active", 0, -1) == [job.id]
    assert redis_sync.get(f"bull:q:{job.id}:lock") == "tok-1"
    redis_sync.zadd(f"bull:q:{added.id}:unsuccessful", {"bull:c:2": 1})
    with pytest.raises(FailedChildrenError):
        await job.move_to_waiting_children()
    redis_sync.delete(f"bull:q:{added.id}:unsuccessful")
    assert await job.move_to_waiting_children(child_key="bull:c:1") is True
    assert redis_sync.zscore("bull:q:waiting-children", job.id) is not None
    assert redis_sync.llen("bull:q:active") == 0


@pytest.mark.parametrize("bad", ["", 7, b"bull:c:1"])
async def test_move_to_waiting_children_refuses_a_bad_child_key(
    bad: Any, queue: Queue, redis_sync: redis.Redis
) -> None:
    await queue.add("p", {})
    job = await _fetch_one(queue)
    with pytest.raises(InvalidOptionError, match="child_key"):
        await job.move_to_waiting_children(child_key=bad)
    assert redis_sync.lrange("bull:q:active", 0, -1) == [job.id]
