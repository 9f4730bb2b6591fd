"""Flows through the public API (FlowProducer, Worker, Job readers): a parent runs after
its children and reads their values, failure policies, delay/priority at release, step
jobs, get_flow, retry of parents, attaching and duplicates, and bad trees
(bullmq-flows-schedulers.md A.3-A.7); removal, detaching and the waiting-children state
are in test_flow_lifecycle.py."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import pytest

from dockyard import (
    FlowProducer,
    InvalidJobError,
    InvalidOptionError,
    Job,
    JobFailed,
    JobNode,
    JobNotFoundError,
    Queue,
    WaitingChildrenError,
    Worker,
)

from .conftest import default_prefix, wait_for


def key(node: JobNode) -> str:
    """A child's full key, as the parent's readers name it."""
    return f"{default_prefix()}:{node.job.queue_name}:{node.job.id}"


async def child_value(job: Job) -> Any:
    return job.data["v"]


async def sum_children(job: Job) -> int:
    values = await job.get_children_values()
    return sum(values.values()) + job.data.get("v", 0)


async def counts(url: str, *queues: str) -> int:
    """How many jobs the queues hold in all states together."""
    total = 0
    for name in queues:
        async with Queue(name, url=url) as queue:
            total += sum((await queue.get_job_counts()).values())
    return total


async def test_a_parent_runs_after_its_three_children_and_reads_their_values(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    seen: list[dict[str, int]] = []

    async def parent(job: Job) -> int:
        seen.append(await job.get_dependencies_count())
        return await sum_children(job)

    node = await flows.add({
        "name": "parent", "queue": "q",
        "children": [{"name": "child", "queue": "q", "data": {"v": v}} for v in (1, 2, 4)],
    })  # fmt: skip
    assert [c.job.name for c in node.children] == ["child"] * 3
    assert await node.job.get_state() == "waiting-children"
    assert {await c.job.get_state() for c in node.children} == {"waiting"}
    async with Worker("q", {"parent": parent, "child": child_value}, url=flow_backend_url):
        assert await node.job.wait_until_finished(timeout=15) == 7
    assert seen == [{"processed": 3, "unprocessed": 0, "ignored": 0, "failed": 0}]
    assert await node.job.get_children_values() == {key(c): c.job.data["v"] for c in node.children}


async def test_children_in_another_queue_release_a_parent_in_its_own(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    node = await flows.add({
        "name": "render", "queue": "renders", "data": {"v": 100},
        "children": [{"name": "frame", "queue": "frames", "data": {"v": i}} for i in range(3)],
    })  # fmt: skip
    assert {c.job.queue_name for c in node.children} == {"frames"}
    async with Worker("frames", child_value, url=flow_backend_url):
        await wait_for(lambda: _state_is(node.job, "waiting"), timeout=15, what="parent released")
    async with Worker("renders", sum_children, url=flow_backend_url):
        assert await node.job.wait_until_finished(timeout=15) == 103


async def _state_is(job: Job, state: str) -> bool:
    return await job.get_state() == state


async def test_a_three_level_tree_completes_from_the_leaves_up(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    tree = {
        "name": "root", "queue": "top", "data": {"v": 1000},
        "children": [
            {"name": "mid", "queue": "mid", "data": {"v": 100 * m},
             "children": [{"name": "leaf", "queue": "leaf", "data": {"v": m * 10 + i}}
                          for i in range(2)]}
            for m in (1, 2)
        ],
    }  # fmt: skip
    node = await flows.add(tree)
    assert [len(c.children) for c in node.children] == [2, 2]
    assert await node.children[0].job.get_state() == "waiting-children"
    workers = [Worker(q, sum_children, url=flow_backend_url) for q in ("top", "mid", "leaf")]
    for worker in workers:
        await worker.__aenter__()
    try:
        # 1000 + (100 + 10 + 11) + (200 + 20 + 21)
        assert await node.job.wait_until_finished(timeout=20) == 1362
    finally:
        for worker in workers:
            await worker.__aexit__(None, None, None)
    mid = node.children[1]
    assert await mid.job.get_children_values() == {key(c): c.job.data["v"] for c in mid.children}


POLICIES = ["fail_parent_on_failure", "continue_parent_on_failure",
            "ignore_dependency_on_failure", "remove_dependency_on_failure", None]  # fmt: skip


@pytest.mark.parametrize("policy", POLICIES)
async def test_a_childs_final_failure_applies_its_failure_policy(
    policy: str | None, flows: FlowProducer, flow_backend_url: str
) -> None:
    async def kid(job: Job) -> Any:
        if job.name == "bad":
            raise RuntimeError("bad child")
        return job.data["v"]

    node = await flows.add({
        "name": "parent", "queue": "parents", "opts": {"attempts": 3},
        "children": [
            {"name": "good", "queue": "kids", "data": {"v": 5}},
            {"name": "bad", "queue": "kids", "opts": {policy: True} if policy else {}},
        ],
    })  # fmt: skip
    good, bad = node.children
    async with Worker("kids", kid, url=flow_backend_url, concurrency=1):
        with pytest.raises(JobFailed, match="bad child"):
            await bad.job.wait_until_finished(timeout=15)
        assert await good.job.wait_until_finished(timeout=15) == 5
    deps = await node.job.get_dependencies()
    if policy is None:
        # No policy: the parent keeps waiting for the failed child (BullMQ's default).
        assert await node.job.get_state() == "waiting-children"
        assert deps["unprocessed"] == [key(bad)]
        return
    async with Worker("parents", sum_children, url=flow_backend_url):
        if policy == "fail_parent_on_failure":
            with pytest.raises(JobFailed, match=f"child {key(bad)} failed"):
                await node.job.wait_until_finished(timeout=15)
            await node.job.refresh()
            assert node.job.attempts_made == 1  # failed at once, no retry
        else:
            assert await node.job.wait_until_finished(timeout=15) == 5
    deps = await node.job.get_dependencies()
    assert deps["processed"] == {key(good): 5}
    assert deps["unprocessed"] == []
    assert deps["failed"] == ([key(bad)] if policy == "fail_parent_on_failure" else [])
    ignored = {key(bad): "bad child"} if policy in POLICIES[1:3] else {}
    assert deps["ignored"] == ignored
    assert await node.job.get_failed_children_values() == ignored


@pytest.mark.parametrize(("opts", "state"), [({"delay": 600}, "delayed"),
                                             ({"priority": 3}, "prioritized")])  # fmt: skip
async def test_a_parents_delay_and_priority_apply_when_it_is_released(
    opts: dict[str, Any], state: str, flows: FlowProducer, flow_backend_url: str
) -> None:
    node = await flows.add({
        "name": "parent", "queue": "parents", "opts": opts,
        "children": [{"name": "c", "queue": "kids", "data": {"v": 1}}],
    })  # fmt: skip
    assert await node.job.get_state() == "waiting-children"
    async with Worker("kids", child_value, url=flow_backend_url):
        await node.children[0].job.wait_until_finished(timeout=15)
    assert await node.job.get_state() == state


async def test_a_step_job_waits_for_children_it_adds_while_running(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    moves: list[bool] = []

    async def step(job: Job) -> Any:
        if (await job.get_dependencies_count())["processed"]:
            return {"after": await job.get_children_values()}
        parent = {"id": job.id, "queue": f"{default_prefix()}:steps"}
        await flows.add({"name": "kid", "queue": "kids", "data": {"v": 9},
                         "opts": {"parent": parent}})  # fmt: skip
        moves.append(await job.move_to_waiting_children())
        raise WaitingChildrenError()

    async with Queue("steps", url=flow_backend_url) as steps:
        job = await steps.add("step", {})
        async with Worker("steps", step, url=flow_backend_url):
            await wait_for(lambda: _state_is(job, "waiting-children"), timeout=15, what="parked")
            assert moves == [True]
            (kid,) = (await job.get_dependencies())["unprocessed"]
            async with Worker("kids", child_value, url=flow_backend_url):
                assert await job.wait_until_finished(timeout=15) == {"after": {kid: 9}}
    assert moves == [True]


async def test_get_flow_reads_the_tree_of_existing_jobs_with_their_states(
    flows: FlowProducer,
) -> None:
    node = await flows.add({
        "name": "root", "queue": "a",
        "children": [
            {"name": "m", "queue": "b", "opts": {"job_id": f"m{i}"},
             "children": [{"name": "l", "queue": "c", "opts": {"job_id": f"l{i}{j}"}}
                          for j in range(3)]}
            for i in range(2)
        ],
    })  # fmt: skip
    tree = await flows.get_flow("a", node.job.id)
    assert tree is not None
    assert _shape(tree) == _shape(node)
    assert tree.job.name == "root" and await tree.job.get_state() == "waiting-children"
    assert {await leaf.job.get_state() for m in tree.children for leaf in m.children} == {"waiting"}
    shallow = await flows.get_flow("a", node.job.id, depth=2, max_children=1)
    assert shallow is not None
    assert [(c.job.id, c.children) for c in shallow.children] == [("m0", ())]
    assert await flows.get_flow("a", "nope") is None
    with pytest.raises(InvalidOptionError):
        await flows.get_flow("a", node.job.id, depth=0)


def _shape(node: JobNode) -> tuple[str, str, str, tuple[Any, ...]]:
    """A node's queue, id and name with its children's shapes, in a canonical order."""
    kids = tuple(sorted(_shape(c) for c in node.children))
    return (node.job.queue_name, node.job.id, node.job.name, kids)


async def test_a_failed_parent_retried_runs_again_without_waiting(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    """A retried parent whose children are all processed is not parked again: it runs."""
    runs: list[int] = []

    async def parent(job: Job) -> int:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        return await sum_children(job)

    child = {"name": "c", "queue": "kids", "data": {"v": 2}}
    node = await flows.add({"name": "p", "queue": "parents", "children": [child]})
    async with Worker("kids", child_value, url=flow_backend_url):
        await node.children[0].job.wait_until_finished(timeout=15)
    async with Worker("parents", parent, url=flow_backend_url):
        with pytest.raises(JobFailed, match="first run fails"):
            await node.job.wait_until_finished(timeout=15)
        await node.job.retry()
        assert await node.job.wait_until_finished(timeout=15) == 2
    assert len(runs) == 2


async def test_a_root_can_attach_to_an_existing_parent_which_must_exist(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    node = await flows.add({"name": "p", "queue": "parents",
                            "children": [{"name": "c", "queue": "kids"}]})  # fmt: skip
    extra = await flows.add({"name": "late", "queue": "kids", "opts": {
        "parent": {"id": node.job.id, "queue": f"{default_prefix()}:parents"},
        "ignore_dependency_on_failure": True}})  # fmt: skip
    assert sorted((await node.job.get_dependencies())["unprocessed"]) == sorted(
        [key(node.children[0]), key(extra)]
    )
    with pytest.raises(JobNotFoundError, match="does not exist; nothing was added"):
        await flows.add({
            "name": "orphan", "queue": "kids", "children": [{"name": "x", "queue": "kids"}],
            "opts": {"parent": {"id": "missing", "queue": f"{default_prefix()}:parents"}},
        })  # fmt: skip
    assert await counts(flow_backend_url, "kids") == 2


async def test_an_existing_job_attached_to_a_missing_parent_is_refused(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    """bullmq-protocol.md 3.1 step 1: the parent is checked before the duplicate handling,
    so re-adding an existing id under a parent that does not exist is refused (-5)."""
    async with Queue("kids", url=flow_backend_url) as kids:
        job = await kids.add("c", {}, job_id="there")
        missing = {"id": "missing", "queue": f"{default_prefix()}:parents"}
        with pytest.raises(JobNotFoundError, match=r"parent missing .* does not exist"):
            await flows.add(
                {"name": "c", "queue": "kids", "opts": {"job_id": "there", "parent": missing}}
            )
        assert await job.remove_child_dependency() is False  # still no parent
        assert await job.get_state() == "waiting"
        assert await counts(flow_backend_url, "kids", "parents") == 1


async def test_a_duplicate_child_id_is_reattached_or_refused(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    """BullMQ 6.7 (A.3 step 4): a completed child re-added under a new parent counts as
    processed for it; one that belongs to another live parent refuses the whole flow."""
    first = await flows.add({"name": "p", "queue": "parents",
                             "children": [{"name": "c", "queue": "kids", "data": {"v": 3},
                                           "opts": {"job_id": "shared"}}]})  # fmt: skip
    with pytest.raises(InvalidJobError, match="child of another parent"):
        await flows.add({"name": "p2", "queue": "parents", "opts": {"job_id": "p2"},
                         "children": [{"name": "c", "queue": "kids",
                                       "opts": {"job_id": "shared"}}]})  # fmt: skip
    assert await counts(flow_backend_url, "parents") == 1
    async with Worker("kids", child_value, url=flow_backend_url):
        await first.children[0].job.wait_until_finished(timeout=15)
    await first.job.remove()  # the old parent is gone: the child may be re-attached
    again = await flows.add({"name": "p3", "queue": "parents",
                             "children": [{"name": "c", "queue": "kids",
                                           "opts": {"job_id": "shared"}}]})  # fmt: skip
    assert await again.job.get_state() == "waiting"  # its only child was done already
    assert await again.job.get_children_values() == {f"{default_prefix()}:kids:shared": 3}


def _chain(length: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"name": "n", "queue": "q"}
    for _ in range(length - 1):
        tree = {"name": "n", "queue": "q", "children": [tree]}
    return tree


def _cycle() -> dict[str, Any]:
    node: dict[str, Any] = {"name": "n", "queue": "q", "children": []}
    node["children"].append({"name": "m", "queue": "q", "children": [node]})
    return node


def _wide(count: int) -> dict[str, Any]:
    return {"name": "n", "queue": "q", "children": [{"name": "c", "queue": "q"}] * count}


def _in_default_prefix(tree: Any) -> Any:
    """A copy of ``tree`` whose parent keys ``bull:<queue>`` name the run's default prefix
    (``{bull}`` on a cluster); cycles and shared nodes are kept."""
    tree = copy.deepcopy(tree)
    seen: set[int] = set()
    todo = [tree]
    while todo:
        node = todo.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        parent = node.get("opts", {}).get("parent")
        if isinstance(parent, dict) and str(parent.get("queue")).startswith("bull:"):
            parent["queue"] = default_prefix() + parent["queue"][4:]
        if isinstance(node.get("children"), list):
            todo.extend(node["children"])
    return tree


BAD_TREES: list[tuple[str, Any, type[Exception], str]] = [
    ("unknown key", {"name": "n", "queue": "q", "kids": []}, InvalidJobError, "unknown key"),
    ("bad name", {"name": "", "queue": "q"}, InvalidJobError, "name"),
    ("bad data", {"name": "n", "queue": "q", "data": {"x": float("nan")}}, InvalidJobError,
     "JSON"),
    ("bad queue", {"name": "n", "queue": "a:b"}, InvalidOptionError, "queue name"),
    ("unknown option", {"name": "n", "queue": "q", "opts": {"atempts": 2}}, InvalidOptionError,
     "unknown job option"),
    ("bad option", {"name": "n", "queue": "q", "opts": {"priority": -1}}, InvalidOptionError,
     "priority"),
    ("two policies", {"name": "p", "queue": "q", "children": [{"name": "c", "queue": "q", "opts": {
        "fail_parent_on_failure": True, "ignore_dependency_on_failure": True}}]},
     InvalidOptionError, "at most one failure policy"),
    ("policy on a root", {"name": "n", "queue": "q", "opts": {"fail_parent_on_failure": True}},
     InvalidOptionError, "no parent"),
    ("another prefix", {"name": "n", "queue": "q", "opts": {"parent": {"id": "x",
     "queue": "other:q"}}}, InvalidOptionError, "prefix"),
    ("parent on a child", {"name": "p", "queue": "q", "children": [{"name": "c", "queue": "q",
     "opts": {"parent": {"id": "x", "queue": "bull:q"}}}]}, InvalidOptionError, "root"),
    ("duplicate ids", {"name": "p", "queue": "q", "children": [
        {"name": "c", "queue": "q", "opts": {"job_id": "same"}},
        {"name": "c", "queue": "q", "opts": {"job_id": "same"}}]}, InvalidJobError, "twice"),
    ("cycle", _cycle(), InvalidJobError, "cycles"),
    ("root's parent in its tree", {"name": "p", "queue": "q", "opts": {"job_id": "r",
     "parent": {"id": "k", "queue": "bull:q"}}, "children": [{"name": "c", "queue": "q",
     "opts": {"job_id": "k"}}]}, InvalidJobError, "cycles"),
    ("too many jobs", _wide(10_000), InvalidJobError, "at most 10,000 jobs"),
    ("deduplication", {"name": "n", "queue": "q", "opts": {"deduplication": {"id": "d"}}},
     InvalidOptionError, "deduplication"),
    ("children not a list", {"name": "n", "queue": "q", "children": {"name": "c"}},
     InvalidJobError, "list"),
    ("node not a dict", {"name": "n", "queue": "q", "children": ["c"]}, InvalidJobError, "dict"),
]  # fmt: skip


@pytest.mark.parametrize(("tree", "error", "match"), [t[1:] for t in BAD_TREES],
                         ids=[t[0] for t in BAD_TREES])  # fmt: skip
async def test_a_bad_tree_is_refused_with_a_typed_error_and_nothing_is_written(
    tree: Any, error: type[Exception], match: str, flows: FlowProducer, flow_backend_url: str
) -> None:
    tree = _in_default_prefix(tree)
    with pytest.raises(error, match=match):
        await flows.add(tree)
    with pytest.raises(error, match=match):
        await flows.add_bulk([{"name": "fine", "queue": "q"}, tree])
    assert await counts(flow_backend_url, "q", "a") == 0


async def test_the_largest_flow_is_written_at_once(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    node = await flows.add(_wide(9_999))
    assert len(node.children) == 9_999
    assert await counts(flow_backend_url, "q") == 10_000
    assert (await node.job.get_dependencies_count())["unprocessed"] == 9_999
    deep = await flows.add(_chain(200))
    tree = await flows.get_flow("q", deep.job.id, depth=100)
    assert tree is not None
    depth = 0
    while tree.children:
        (tree,) = tree.children
        depth += 1
    assert depth == 99


async def test_add_bulk_writes_every_tree_in_one_call(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    roots = await flows.add_bulk([
        {"name": f"p{i}", "queue": "parents", "children": [{"name": "c", "queue": "kids"}]}
        for i in range(3)
    ])  # fmt: skip
    assert [r.job.name for r in roots] == ["p0", "p1", "p2"]
    assert len({r.job.id for r in roots}) == 3
    for root in roots:
        uuid.UUID(root.job.id)  # random UUIDs, as Node's FlowProducer
        assert (await root.job.get_dependencies())["unprocessed"] == [key(root.children[0])]
    assert await flows.add_bulk([]) == []
    await asyncio.gather(*(r.job.get_state() for r in roots))
