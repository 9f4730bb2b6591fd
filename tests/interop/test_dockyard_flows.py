"""Flows added by dockyard's FlowProducer and completed by Node BullMQ workers (5.62.0 and
6.7.0), and flows added by the official Python `bullmq` FlowProducer completed by dockyard
workers (bullmq-flows-schedulers.md A.1, A.3, A.9 d)."""

from __future__ import annotations

from typing import Any

import pytest

import redis
from dockyard import FlowProducer, Job, Queue, Worker

from .node_harness import arun_node
from .pybullmq import add_flow_with_pybullmq
from .support import BULLMQ_VERSIONS, behave, node_args

pytestmark = pytest.mark.interop


async def node_works(bullmq: str, url: str, queue: str, until: int, **extra: Any) -> list[Any]:
    """Run Node workers on `queue` until `until` jobs finished; their finish lines."""
    lines = await arun_node("work.mjs", node_args(bullmq, url, queue, until=until, **extra))
    return [line for line in lines if line["event"] in ("completed", "failed")]


async def node_reads(bullmq: str, url: str, queue: str, job_id: str) -> dict[str, Any]:
    lines = await arun_node("flow.mjs", node_args(bullmq, url, queue, action="read", ids=[job_id]))
    line: dict[str, Any] = lines[-1]
    assert line["found"], line
    return line


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_workers_complete_a_dockyard_flow_and_read_the_values(
    bullmq: str, redis_url: str, queue_name: str
) -> None:
    parents, kids = f"{queue_name}-p", f"{queue_name}-c"
    async with FlowProducer(url=redis_url) as flows:
        node = await flows.add({
            "name": "parent", "queue": parents, "opts": {"priority": 2},
            "children": [{"name": f"c{i}", "queue": kids, "data": {"result": {"v": i}}}
                         for i in range(3)],
        })  # fmt: skip
        done = await node_works(bullmq, redis_url, kids, until=3)
        assert sorted(line["id"] for line in done) == sorted(c.job.id for c in node.children)
        assert await node.job.get_state() == "prioritized"  # released with its priority
    expected = {f"bull:{kids}:{c.job.id}": {"v": i} for i, c in enumerate(node.children)}
    (finished,) = await node_works(bullmq, redis_url, parents, until=1, behaviour="children")
    assert finished["id"] == node.job.id
    assert finished["returnvalue"] == {"children": expected}
    seen = await node_reads(bullmq, redis_url, parents, node.job.id)
    assert seen["state"] == "completed"
    assert seen["childrenValues"] == expected
    assert seen["counts"] == {"processed": 3, "unprocessed": 0, "ignored": 0, "failed": 0}


async def ignored_failures(job: Job) -> dict[str, str]:
    return await job.get_failed_children_values()


@pytest.mark.parametrize("bullmq", BULLMQ_VERSIONS)
async def test_node_applies_the_failure_flag_a_dockyard_child_carries(
    bullmq: str, redis_url: str, queue_name: str
) -> None:
    """The flag lives in the child's `parent` JSON (A.1): Node's scripts read it there."""
    parents, kids = f"{queue_name}-p", f"{queue_name}-c"
    async with FlowProducer(url=redis_url) as flows:
        node = await flows.add({
            "name": "parent", "queue": parents, "opts": {"attempts": 3},
            "children": [
                {"name": "ok", "queue": kids, "data": {"result": 1}},
                {"name": "bad", "queue": kids, "data": {"behaviour": "fail", "message": "no"},
                 "opts": {"ignore_dependency_on_failure": True}},
            ],
        })  # fmt: skip
        await node_works(bullmq, redis_url, kids, until=2)
        seen = await node_reads(bullmq, redis_url, parents, node.job.id)
        bad = f"bull:{kids}:{node.children[1].job.id}"
        assert seen["state"] == "waiting"
        assert seen["ignored"] == {bad: "no"}
        async with Worker(parents, ignored_failures, url=redis_url):
            assert await node.job.wait_until_finished(timeout=15) == {bad: "no"}


async def test_dockyard_workers_complete_a_flow_added_by_python_bullmq(
    redis_url: str, redis_sync: redis.Redis, queue_name: str
) -> None:
    parents, kids, more = f"{queue_name}-p", f"{queue_name}-c", f"{queue_name}-m"
    tree = {
        "name": "parent", "queueName": parents, "data": {},
        "children": [
            {"name": "c", "queueName": kids, "data": {"result": {"v": 1}}},
            {"name": "c", "queueName": more, "data": {"result": {"v": 2}}},
        ],
    }  # fmt: skip
    flow = await add_flow_with_pybullmq(redis_url, tree)
    pid = flow["id"]
    assert redis_sync.zscore(f"bull:{parents}:waiting-children", pid) is not None

    async def parent(job: Job) -> Any:
        return await job.get_children_values()

    async with (
        Worker(kids, behave, url=redis_url),
        Worker(more, behave, url=redis_url),
        Worker(parents, parent, url=redis_url),
        Queue(parents, url=redis_url) as q,
    ):
        job = await q.get_job(pid)
        assert job is not None
        assert await job.wait_until_finished(timeout=20) == {
            f"bull:{kids}:{flow['children'][0]['id']}": {"v": 1},
            f"bull:{more}:{flow['children'][1]['id']}": {"v": 2},
        }
    async with FlowProducer(url=redis_url) as flows:
        read = await flows.get_flow(parents, pid)
    assert read is not None
    assert sorted(c.job.queue_name for c in read.children) == [kids, more]
