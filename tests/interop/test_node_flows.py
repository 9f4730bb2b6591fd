"""Node BullMQ flows (FlowProducer) whose jobs dockyard workers run: parents are released,
failure policies apply, values reach the parent (bullmq-flows-schedulers.md A.4, A.5, A.9)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import redis
from dockyard import Job, Queue, Worker

from .node_harness import arun_node
from .support import BULLMQ_VERSIONS, behave, node_args, poll_until

pytestmark = pytest.mark.interop


async def add_flow(bullmq: str, url: str, queue: str, tree: dict[str, Any]) -> dict[str, Any]:
    """Add `tree` with Node's FlowProducer; the ids Node gave, as a tree."""
    lines = await arun_node("flow.mjs", node_args(bullmq, url, queue, action="add", tree=tree))
    flow: dict[str, Any] = lines[-1]["tree"]
    return flow


async def node_reads(bullmq: str, url: str, queue: str, job_id: str) -> dict[str, Any]:
    """The parent as Node reads it: state, getChildrenValues, getDependencies and counts."""
    lines = await arun_node("flow.mjs", node_args(bullmq, url, queue, action="read", ids=[job_id]))
    line: dict[str, Any] = lines[-1]
    assert line["found"], line
    return line


async def flow_behave(job: Job) -> Any:
    """Parents return their children's values (read by dockyard); others do as `behave`."""
    if job.data.get("parent"):
        return {"kids": await job.get_children_values()}
    return await behave(job)


def waiting_children(r: redis.Redis, queue: str, job_id: str) -> bool:
    return r.zscore(f"bull:{queue}:waiting-children", job_id) is not None


def queue_events(r: redis.Redis, queue: str, job_id: str) -> list[dict[str, str]]:
    entries = [dict(fields) for _, fields in r.xrange(f"bull:{queue}:events")]
    return [e for e in entries if e.get("jobId") == job_id]


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_dockyard_completing_node_flow_children_releases_the_parent_for_node(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    parents, children = f"{queue_name}-p", f"{queue_name}-c"
    tree = {
        "name": "parent",
        "queueName": parents,
        "children": [
            {"name": f"c{i}", "queueName": children, "data": {"result": {"v": i * 10}}}
            for i in range(3)
        ],
    }
    flow = await add_flow(bullmq, redis_url, parents, tree)
    pid = flow["id"]
    assert waiting_children(redis_sync, parents, pid)
    async with Worker(children, behave, url=redis_url, concurrency=3):
        await poll_until(
            lambda: redis_sync.lrange(f"bull:{parents}:wait", 0, -1) == [pid],
            timeout=20,
            what="the parent released to wait",
        )
    assert not waiting_children(redis_sync, parents, pid)
    assert queue_events(redis_sync, parents, pid)[-1] == {
        "event": "waiting", "jobId": pid, "prev": "waiting-children"
    }  # fmt: skip
    expected = {
        f"bull:{children}:{child['id']}": {"v": i * 10} for i, child in enumerate(flow["children"])
    }
    lines = await arun_node(
        "work.mjs", node_args(bullmq, redis_url, parents, until=1, behaviour="children")
    )
    done = [line for line in lines if line["event"] == "completed"]
    assert [line["id"] for line in done] == [pid]
    assert done[0]["returnvalue"] == {"children": expected}
    seen = await node_reads(bullmq, redis_url, parents, pid)
    assert seen["state"] == "completed"
    assert seen["childrenValues"] == expected
    assert seen["counts"] == {"processed": 3, "unprocessed": 0, "ignored": 0, "failed": 0}


FLAGS = {
    "fpof": "failParentOnFailure",
    "cpof": "continueParentOnFailure",
    "idof": "ignoreDependencyOnFailure",
    "rdof": "removeDependencyOnFailure",
    "none": None,
}


@pytest.mark.parametrize("policy", list(FLAGS))
@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_childs_final_failure_applies_its_failure_policy_to_the_node_parent(
    bullmq: str, policy: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    parents, children = f"{queue_name}-p", f"{queue_name}-c"
    flag = FLAGS[policy]
    bad_opts: dict[str, Any] = {"attempts": 1, **({flag: True} if flag else {})}
    tree = {
        "name": "parent",
        "queueName": parents,
        "data": {"parent": True},
        "opts": {"attempts": 3},  # a parent failed by its child gets no retry
        "children": [
            {"name": "bad", "queueName": children, "opts": bad_opts,
             "data": {"behaviour": "fail", "message": "bad child"}},
            {"name": "late", "queueName": children, "opts": {"delay": 600_000},
             "data": {"result": "late"}},
        ],
    }  # fmt: skip
    flow = await add_flow(bullmq, redis_url, parents, tree)
    pid = flow["id"]
    bad, late = (child["id"] for child in flow["children"])
    bad_key, late_key = f"bull:{children}:{bad}", f"bull:{children}:{late}"
    parent_key = f"bull:{parents}:{pid}"
    async with (
        Queue(children, url=redis_url) as child_queue,
        Worker(children, behave, url=redis_url),
    ):
        await poll_until(
            lambda: redis_sync.zscore(f"bull:{children}:failed", bad) is not None,
            timeout=20,
            what="the bad child failed",
        )
        if policy in ("fpof", "cpof"):
            # Released at once, although the late sibling still pends.
            assert redis_sync.lrange(f"bull:{parents}:wait", 0, -1) == [pid]
        else:
            assert waiting_children(redis_sync, parents, pid)
            late_job = await child_queue.get_job(late)
            assert late_job is not None
            await late_job.promote()
            await poll_until(
                lambda: redis_sync.zscore(f"bull:{children}:completed", late) is not None,
                timeout=20,
                what="the late child completed",
            )
    released = redis_sync.lrange(f"bull:{parents}:wait", 0, -1) == [pid]
    assert released == (policy != "none")
    assert waiting_children(redis_sync, parents, pid) == (policy == "none")
    if policy == "fpof":
        assert redis_sync.hget(parent_key, "defa") == f"child {bad_key} failed"
        async with Worker(parents, flow_behave, url=redis_url):
            await poll_until(
                lambda: redis_sync.zscore(f"bull:{parents}:failed", pid) is not None,
                timeout=20,
                what="the parent failed by a dockyard worker",
            )
        assert redis_sync.hget(parent_key, "atm") == "1"
    seen = await node_reads(bullmq, redis_url, parents, pid)
    deps = seen["dependencies"]
    if policy == "fpof":
        assert seen["state"] == "failed"
        assert seen["failedReason"] == f"child {bad_key} failed"
        assert deps["failed"] == [bad_key] and deps["unprocessed"] == [late_key]
    elif policy == "cpof":
        assert seen["state"] == "waiting"
        assert deps["ignored"] == {bad_key: "bad child"} and deps["unprocessed"] == [late_key]
        assert seen["ignored"] == {bad_key: "bad child"}
    elif policy == "idof":
        assert seen["state"] == "waiting"
        assert deps["ignored"] == {bad_key: "bad child"} and deps["unprocessed"] == []
        assert deps["processed"] == {late_key: "late"}
    elif policy == "rdof":
        assert seen["state"] == "waiting"
        assert deps["ignored"] == {} and deps["failed"] == [] and deps["unprocessed"] == []
        assert deps["processed"] == {late_key: "late"}
    else:
        assert seen["state"] == "waiting-children"
        assert deps["unprocessed"] == [bad_key] and deps["processed"] == {late_key: "late"}


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_three_level_node_tree_across_two_queues_completes_on_dockyard_workers(
    bullmq: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    top, mid = f"{queue_name}-a", f"{queue_name}-b"
    tree = {
        "name": "root",
        "queueName": top,
        "data": {"parent": True},
        "children": [
            {
                "name": "middle",
                "queueName": mid,
                "data": {"parent": True},
                "children": [
                    {"name": f"leaf{i}", "queueName": top, "data": {"result": f"leaf-{i}"}}
                    for i in range(2)
                ],
            }
        ],
    }
    flow = await add_flow(bullmq, redis_url, top, tree)
    root = flow["id"]
    middle = flow["children"][0]
    leaves = {f"bull:{top}:{leaf['id']}": f"leaf-{i}" for i, leaf in enumerate(middle["children"])}
    expected = {"kids": {f"bull:{mid}:{middle['id']}": {"kids": leaves}}}
    async with (
        Worker(top, flow_behave, url=redis_url, concurrency=2),
        Worker(mid, flow_behave, url=redis_url),
    ):
        await poll_until(
            lambda: redis_sync.zscore(f"bull:{top}:completed", root) is not None,
            timeout=30,
            what="the root completed",
        )
    seen = await node_reads(bullmq, redis_url, top, root)
    assert seen["state"] == "completed"
    assert seen["returnvalue"] == expected
    assert seen["childrenValues"] == expected["kids"]


@pytest.mark.parametrize("where", ["priority", "delay"])
@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_a_released_node_parent_lands_where_its_priority_or_delay_says(
    bullmq: str, where: str, redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    parents, children = f"{queue_name}-p", f"{queue_name}-c"
    opts = {"priority": 3} if where == "priority" else {"delay": 5000}
    tree = {
        "name": "parent",
        "queueName": parents,
        "opts": opts,
        "children": [{"name": "kid", "queueName": children, "data": {"result": 1}}],
    }
    flow = await add_flow(bullmq, redis_url, parents, tree)
    pid = flow["id"]
    target = f"bull:{parents}:{'prioritized' if where == 'priority' else 'delayed'}"
    before = int(time.time() * 1000)
    async with Worker(children, behave, url=redis_url):
        await poll_until(
            lambda: redis_sync.zscore(target, pid) is not None,
            timeout=20,
            what=f"the parent in {target}",
        )
    after = int(time.time() * 1000)
    score = int(redis_sync.zscore(target, pid) or 0)
    assert not waiting_children(redis_sync, parents, pid)
    assert redis_sync.llen(f"bull:{parents}:wait") == 0
    last = queue_events(redis_sync, parents, pid)[-1]
    if where == "priority":
        assert score == 3 * 2**32 + 1
        assert last == {"event": "waiting", "jobId": pid, "prev": "waiting-children"}
    else:
        assert score % 4096 == 0
        due = score // 4096
        assert before + 5000 <= due <= after + 5000
        assert last == {"event": "delayed", "jobId": pid, "delay": str(due)}
        assert redis_sync.zscore(f"bull:{parents}:marker", "1") == due
