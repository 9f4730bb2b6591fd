"""Flows (parent/child jobs) on the SQLite and memory stores, behaving as on Redis
(bullmq-flows-schedulers.md A.3-A.7): trees stored with ``backend.flows.add_flow``, run by
real Workers, read back through the Job methods."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dockyard import (
    FailedChildrenError,
    InvalidJobError,
    Job,
    JobFailed,
    JobNotFoundError,
    PendingChildrenError,
    Queue,
    WaitingChildrenError,
    Worker,
)
from dockyard.backends.base import Lease, NewJob
from dockyard.backends.flowstore import FailurePolicy, FlowNode
from dockyard.backends.memory import MemoryBackend
from dockyard.durations import to_ms
from dockyard.job import dump_json
from dockyard.options import build_options

from ..waiting import wait_for


@pytest.fixture
def url(manual_url: str) -> str:
    """These tests move the memory store's clock by hand: the manual-clock stores."""
    return manual_url


def node(
    queue: str,
    job_id: str,
    *,
    parent: tuple[str, str] | None = None,
    policy: FailurePolicy | None = None,
    children: bool = False,
    name: str = "job",
    data: Any = None,
    **options: Any,
) -> FlowNode:
    """One FlowNode as a producer builds it: ``parent`` is (queue, id)."""
    opts = build_options(None, job_id=job_id, **options)
    job = NewJob(
        name=name,
        data=dump_json({} if data is None else data, "data"),
        opts=dump_json(opts.to_bullmq(), "opts"),
        timestamp=to_ms(time.time()),
        delay=to_ms(opts.delay),
        priority=opts.priority,
        lifo=opts.lifo,
        job_id=job_id,
    )
    return FlowNode(
        queue=queue,
        job=job,
        parent_id=None if parent is None else parent[1],
        parent_queue=None if parent is None else parent[0],
        on_failure=policy,
        has_children=children,
    )


async def events(queue: Queue) -> list[dict[str, str]]:
    return [fields for _, fields in await queue.backend.read_events("0")]


async def state_is(queue: Queue, job_id: str, state: str) -> bool:
    return await queue.backend.get_state(job_id) == state


async def fail(job: Job) -> None:
    raise RuntimeError(f"{job.id} broke")


async def value(job: Job) -> Any:
    return {"id": job.id, "data": job.data}


async def test_a_parent_runs_once_its_three_children_completed_in_two_queues(url: str) -> None:
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        ids = await pq.backend.flows.add_flow(
            [
                node("pq", "p1", children=True, name="parent"),
                node("pq", "c0", parent=("pq", "p1"), data={"i": 0}),
                node("cq", "c1", parent=("pq", "p1"), data={"i": 1}),
                node("cq", "c2", parent=("pq", "p1"), data={"i": 2}),
            ]
        )
        assert ids == ["p1", "c0", "c1", "c2"]
        assert await pq.get_job_counts("waiting-children", "waiting") == {
            "waiting-children": 1, "waiting": 1,
        }  # fmt: skip
        assert [j.id for j in await pq.get_jobs("waiting-children")] == ["p1"]
        parent = await pq.get_job("p1")
        assert parent is not None and await parent.get_state() == "waiting-children"
        keys = ["bull:cq:c1", "bull:cq:c2", "bull:pq:c0"]
        assert await parent.get_dependencies() == {
            "processed": {}, "unprocessed": keys, "failed": [], "ignored": {},
        }  # fmt: skip

        async def handler(job: Job) -> Any:
            if job.name == "parent":
                return {"seen": await job.get_children_values()}
            return job.data["i"] * 10

        async with Worker("cq", handler, url=url), Worker("pq", handler, url=url):
            result = await parent.wait_until_finished(timeout=10)
        assert result == {"seen": {"bull:pq:c0": 0, "bull:cq:c1": 10, "bull:cq:c2": 20}}
        assert await parent.get_children_values() == result["seen"]
        assert await parent.get_dependencies_count() == {
            "processed": 3, "unprocessed": 0, "ignored": 0, "failed": 0,
        }  # fmt: skip
        assert await parent.get_failed_children_values() == {}
        seen = [e for e in await events(pq) if e.get("jobId") == "p1"]
        assert [e["event"] for e in seen][:3] == ["added", "waiting-children", "waiting"]
        assert seen[2] == {"event": "waiting", "jobId": "p1", "prev": "waiting-children"}
        assert await cq.get_job_counts("completed") == {"completed": 2}


async def test_a_parent_with_a_priority_is_released_to_prioritized(url: str) -> None:
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        await cq.backend.flows.add_flow(
            [node("pq", "p1", children=True, priority=3), node("cq", "c1", parent=("pq", "p1"))]
        )
        async with Worker("cq", value, url=url):
            await wait_for(lambda: state_is(pq, "p1", "prioritized"), 10, "parent released")
        assert await pq.get_counts_per_priority(3) == {3: 1}
        assert (await events(pq))[-1] == {
            "event": "waiting", "jobId": "p1", "prev": "waiting-children",
        }  # fmt: skip


async def test_a_parent_with_a_delay_waits_it_after_its_last_child(url: str) -> None:
    """A.4 step 5: the delay counts from the release (a virtual hour on memory)."""
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        await pq.backend.flows.add_flow(
            [node("pq", "p1", children=True, delay=3600), node("cq", "c1", parent=("pq", "p1"))]
        )
        async with Worker("cq", value, url=url):
            await wait_for(lambda: state_is(pq, "p1", "delayed"), 10, "parent delayed")
        child = await cq.get_job("c1")
        assert child is not None and child.finished_on is not None
        due = round(child.finished_on * 1000) + 3_600_000
        assert (await events(pq))[-1] == {"event": "delayed", "jobId": "p1", "delay": str(due)}
        parent = await pq.get_job("p1")
        assert parent is not None
        async with Worker("pq", lambda job: "ran", url=url):
            if isinstance(pq.backend, MemoryBackend):
                pq.backend.advance(3599)
                assert await parent.get_state() == "delayed"
                pq.backend.advance(1)
            else:
                await parent.promote()
            assert await parent.wait_until_finished(timeout=10) == "ran"
        assert {"event": "waiting", "jobId": "p1", "prev": "delayed"} in await events(pq)


async def _two_children(url: str, policy: FailurePolicy | None, **opts: Any) -> None:
    """Parent p1 (pq) with a child that fails (bq, ``policy``) and one that stays pending
    (gq, no worker yet); runs the failing one to its final failure."""
    async with Queue("bq", url=url) as bq:
        await bq.backend.flows.add_flow(
            [
                node("pq", "p1", children=True, name="parent", attempts=3, priority=2),
                node("bq", "bad", parent=("pq", "p1"), policy=policy, **opts),
                node("gq", "good", parent=("pq", "p1")),
            ]
        )
        async with Worker("bq", fail, url=url):
            await wait_for(
                lambda: _gone_or_failed(bq, "bad"), 10, "the failing child's final failure"
            )


async def _gone_or_failed(queue: Queue, job_id: str) -> bool:
    return await queue.backend.get_state(job_id) in ("failed", "unknown")


async def test_fail_parent_on_failure_fails_the_parent_at_once_without_retry(url: str) -> None:
    """fpof: ``defa`` set, the parent released although a child is pending, and the worker
    that fetches it fails it at once, its handler never called, no retry (A.5, A.9 c)."""
    await _two_children(url, "fpof")
    async with Queue("pq", url=url) as pq:
        parent = await pq.get_job("p1")
        assert parent is not None
        assert parent.deferred_failure == "child bull:bq:bad failed"
        assert await parent.get_state() == "prioritized"
        assert await parent.get_dependencies() == {
            "processed": {}, "unprocessed": ["bull:gq:good"], "failed": ["bull:bq:bad"],
            "ignored": {},
        }  # fmt: skip
        calls: list[str] = []
        async with Worker("pq", lambda job: calls.append(job.id), url=url):
            with pytest.raises(JobFailed, match="child bull:bq:bad failed"):
                await parent.wait_until_finished(timeout=10)
        assert calls == []
        failed = await pq.get_job("p1")
        assert failed is not None and failed.attempts_made == 1


async def test_fail_parent_on_failure_cascades_up_a_tree(url: str) -> None:
    async with Queue("q", url=url) as q:
        await q.backend.flows.add_flow(
            [
                node("q", "root", children=True, name="root"),
                node("q", "mid", parent=("q", "root"), children=True, policy="fpof", name="mid"),
                node("q", "leaf", parent=("q", "mid"), policy="fpof", name="leaf"),
            ]
        )
        calls: list[str] = []

        async def handler(job: Job) -> None:
            calls.append(job.name)
            raise RuntimeError("leaf broke")

        root = await q.get_job("root")
        assert root is not None
        async with Worker("q", handler, url=url):
            with pytest.raises(JobFailed, match="child bull:q:mid failed"):
                await root.wait_until_finished(timeout=10)
        assert calls == ["leaf"]
        mid = await q.get_job("mid")
        assert mid is not None and mid.failed_reason == "child bull:q:leaf failed"


async def test_continue_parent_on_failure_releases_the_parent_with_children_pending(
    url: str,
) -> None:
    """cpof: released at once (#4248); its completion is then refused for the pending child,
    which fails the attempt as an ordinary failure."""
    await _two_children(url, "cpof")
    async with Queue("pq", url=url) as pq:
        parent = await pq.get_job("p1")
        assert parent is not None and await parent.get_state() == "prioritized"
        assert parent.deferred_failure is None
        assert await parent.get_failed_children_values() == {"bull:bq:bad": "bad broke"}
        assert await parent.get_dependencies_count() == {
            "processed": 0, "unprocessed": 1, "ignored": 1, "failed": 0,
        }  # fmt: skip
        async with Worker("pq", lambda job: "done", url=url):
            await wait_for(lambda: _gone_or_failed(pq, "p1"), 10, "the parent's attempts")
        failed = await pq.get_job("p1")
        assert failed is not None and failed.attempts_made == 3
        assert failed.failed_reason is not None
        assert "still has 1 pending children" in failed.failed_reason


@pytest.mark.parametrize("policy", ["idof", "rdof", None])
async def test_ignore_remove_or_no_policy_keep_the_parent_until_the_rest_is_done(
    url: str, policy: FailurePolicy | None
) -> None:
    """idof: resolved and recorded as ignored; rdof: resolved, recorded nowhere; none: the
    failed child stays a dependency and the parent waits for ever (A.5)."""
    await _two_children(url, policy)
    async with Queue("pq", url=url) as pq, Queue("gq", url=url) as gq:
        parent = await pq.get_job("p1")
        assert parent is not None and await parent.get_state() == "waiting-children"
        pending = ["bull:gq:good"] if policy else ["bull:bq:bad", "bull:gq:good"]
        ignored = {"bull:bq:bad": "bad broke"} if policy == "idof" else {}
        assert await parent.get_dependencies() == {
            "processed": {}, "unprocessed": pending, "failed": [], "ignored": ignored,
        }  # fmt: skip
        async with Worker("gq", lambda job: 7, url=url):
            await wait_for(lambda: state_is(gq, "good", "completed"), 10, "good child")
        assert await parent.get_children_values() == {"bull:gq:good": 7}
        assert await parent.get_state() == ("waiting-children" if policy is None else "prioritized")


async def test_a_failed_child_removed_on_fail_releases_its_parent_to_wait(url: str) -> None:
    """A.5 retention interplay: no policy, removeOnFail: the deletion resolves the
    dependency and pushes the parent to wait, its priority ignored (#1752)."""
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        await pq.backend.flows.add_flow(
            [
                node("pq", "p1", children=True, priority=5),
                node("cq", "c1", parent=("pq", "p1"), remove_on_fail=True),
            ]
        )
        async with Worker("cq", fail, url=url):
            await wait_for(lambda: state_is(pq, "p1", "waiting"), 10, "parent released")
        assert await cq.get_job("c1") is None
        assert (await events(pq))[-1] == {
            "event": "waiting", "jobId": "p1", "prev": "waiting-children",
        }  # fmt: skip


async def test_a_child_removed_on_complete_keeps_its_value_in_the_parent(url: str) -> None:
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        await pq.backend.flows.add_flow(
            [
                node("pq", "p1", children=True),
                node("cq", "c1", parent=("pq", "p1"), remove_on_complete=True),
            ]
        )
        async with Worker("cq", lambda job: {"n": [1, 2]}, url=url):
            await wait_for(lambda: state_is(pq, "p1", "waiting"), 10, "parent released")
        assert await cq.get_job("c1") is None
        parent = await pq.get_job("p1")
        assert parent is not None
        assert await parent.get_children_values() == {"bull:cq:c1": {"n": [1, 2]}}


async def test_completing_a_parent_is_refused_while_children_pend_or_failed(url: str) -> None:
    """-4 then -9 (A.6): the job keeps its lock and stays active; failing stays allowed."""
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        await pq.add("step", {}, job_id="p1")
        fetched = await pq.backend.fetch(Lease("tok-1", 60_000, None), 1)
        [job] = fetched.jobs
        await cq.backend.flows.add_flow([node("cq", "c1", parent=("pq", "p1"), policy="fpof")])
        with pytest.raises(PendingChildrenError, match="still has 1 pending children"):
            await job.move_to_completed({"done": True})
        assert await job.get_state() == "active"
        async with Worker("cq", fail, url=url):
            await wait_for(lambda: state_is(cq, "c1", "failed"), 10, "the child failed")
        stored = await pq.get_job("p1")
        assert stored is not None and stored.deferred_failure == "child bull:cq:c1 failed"
        with pytest.raises(FailedChildrenError):
            await job.move_to_completed({"done": True})
        with pytest.raises(FailedChildrenError):
            await job.move_to_waiting_children()
        assert await job.get_state() == "active"
        await job.move_to_failed("gave up")
        assert await job.get_state() == "failed"


async def test_a_step_job_waits_for_a_child_added_at_run_time(url: str) -> None:
    """move_to_waiting_children + WaitingChildrenError (A.6): the handler adds a child to
    its own job, parks it, and runs again once the child completed."""
    moves: list[bool] = []
    sq = Queue("sq", url=url)

    async def step(job: Job) -> Any:
        if job.data.get("step", 0) == 0:
            flows = sq.backend.flows
            assert await job.move_to_waiting_children() is False  # nothing pending yet
            await flows.add_flow([node("kq", "kid", parent=("sq", job.id), data={"k": 1})])
            assert await job.move_to_waiting_children(child_key="bull:kq:other") is False
            await job.update_data({"step": 1})
            moved = await job.move_to_waiting_children()
            moves.append(moved)
            if moved:
                raise WaitingChildrenError()
        return {"kids": await job.get_children_values()}

    async with sq:
        added = await sq.add("step", {"step": 0})
        async with Worker("sq", step, url=url):
            await wait_for(lambda: state_is(sq, added.id, "waiting-children"), 10, "parked")
            assert await sq.get_job_counts("active", "waiting-children") == {
                "active": 0, "waiting-children": 1,
            }  # fmt: skip
            async with Worker("kq", value, url=url):
                done = await added.wait_until_finished(timeout=10)
        parked = {"event": "waiting-children", "jobId": added.id, "prev": "active"}
        assert parked in await events(sq)
    assert moves == [True]
    assert done == {"kids": {"bull:kq:kid": {"id": "kid", "data": {"k": 1}}}}


@pytest.mark.parametrize("how", ["remove", "drain", "clean", "obliterate"])
async def test_deleting_the_last_pending_child_releases_the_parent(url: str, how: str) -> None:
    """removeChildDependency (A.6): priority and delay are not applied on this release."""
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        await pq.backend.flows.add_flow(
            [
                node("pq", "p1", children=True, priority=4, delay=600),
                node("pq", "c0", parent=("pq", "p1")),
                node("cq", "c1", parent=("pq", "p1")),
            ]
        )
        await pq.remove("c0")
        parent = await pq.get_job("p1")
        assert parent is not None and await parent.get_state() == "waiting-children"
        assert (await parent.get_dependencies())["unprocessed"] == ["bull:cq:c1"]
        if how == "remove":
            await cq.remove("c1")
        elif how == "drain":
            await cq.drain()
        elif how == "clean":
            await cq.clean(0, state="waiting")
        else:
            await cq.pause()
            await cq.obliterate()
        assert await parent.get_state() == "waiting"
        assert await parent.get_dependencies() == {
            "processed": {}, "unprocessed": [], "failed": [], "ignored": {},
        }  # fmt: skip
        assert (await events(pq))[-1] == {
            "event": "waiting", "jobId": "p1", "prev": "waiting-children",
        }  # fmt: skip


async def test_a_parent_with_pending_children_is_not_removed_but_obliterated_frees_them(
    url: str,
) -> None:
    """As removeJob on Redis: a parent with pending children is refused (-4) and nothing
    changes; obliterating its queue deletes it and leaves the children free to finish."""
    async with Queue("pq", url=url) as pq, Queue("cq", url=url) as cq:
        await pq.backend.flows.add_flow(
            [node("pq", "p1", children=True), node("cq", "c1", parent=("pq", "p1"))]
        )
        with pytest.raises(PendingChildrenError, match="remove the children first"):
            await pq.remove("p1")
        parent = await pq.get_job("p1")
        assert parent is not None and await parent.get_state() == "waiting-children"
        assert (await parent.get_dependencies())["unprocessed"] == ["bull:cq:c1"]
        await pq.pause()
        await pq.obliterate()
        async with Worker("cq", lambda job: 1, url=url):
            await wait_for(lambda: state_is(cq, "c1", "completed"), 10, "the child")
        assert sum((await pq.get_job_counts()).values()) == 0


async def test_a_flow_naming_a_missing_parent_is_refused_whole(url: str) -> None:
    async with Queue("pq", url=url) as pq:
        with pytest.raises(JobNotFoundError, match=r"parent nope .* of job c9 does not exist"):
            await pq.backend.flows.add_flow(
                [
                    node("pq", "p1", children=True),
                    node("pq", "c1", parent=("pq", "p1")),
                    node("pq", "c9", parent=("pq", "nope")),
                ]
            )
        assert await pq.get_job("p1") is None and await pq.get_job("c1") is None
        assert sum((await pq.get_job_counts()).values()) == 0


async def test_a_duplicate_child_of_another_live_parent_is_refused(url: str) -> None:
    """-7 (A.3 step 4); the same parent re-attaches, a completed child as processed."""
    async with Queue("pq", url=url) as pq:
        flows = pq.backend.flows
        await flows.add_flow(
            [node("pq", "p1", children=True), node("pq", "c1", parent=("pq", "p1"))]
        )
        with pytest.raises(InvalidJobError, match="another parent"):
            await flows.add_flow(
                [node("pq", "p2", children=True), node("pq", "c1", parent=("pq", "p2"))]
            )
        assert await pq.get_job("p2") is None
        async with Worker("pq", lambda job: "v", url=url):
            await wait_for(lambda: state_is(pq, "p1", "completed"), 10, "p1")
        await pq.pause()
        await pq.remove("p1")  # c1's parent is gone: it may join another (6.7)
        await flows.add_flow(
            [node("pq", "p3", children=True), node("pq", "c1", parent=("pq", "p3"))]
        )
        p3 = await pq.get_job("p3")
        assert p3 is not None and await p3.get_state() == "waiting"
        assert await pq.get_job_counts("paused") == {"paused": 1}
        assert await p3.get_children_values() == {"bull:pq:c1": "v"}
        assert {"event": "duplicated", "jobId": "c1"} in await events(pq)
