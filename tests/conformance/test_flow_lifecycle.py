"""The life of a flow's parent through the public API on every store: removing it or its
children, detaching a child (remove_child_dependency), and the ``waiting-children`` state
in get_state, the counts and QueueEvents (bullmq-flows-schedulers.md A.3, A.6)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard import (
    FlowProducer,
    Job,
    JobNotFoundError,
    PendingChildrenError,
    Queue,
    QueueEvents,
    WaitingChildrenError,
    Worker,
)

from .conftest import default_prefix, wait_for
from .test_flows import _state_is, child_value, key


async def test_remove_child_dependency_detaches_a_child_and_releases_its_parent(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    node = await flows.add({
        "name": "p", "queue": "parents", "opts": {"priority": 4},
        "children": [{"name": "c", "queue": "kids"}, {"name": "c", "queue": "kids"}],
    })  # fmt: skip
    first, second = node.children
    assert await first.job.remove_child_dependency() is True
    assert (await node.job.get_dependencies())["unprocessed"] == [key(second)]
    assert await node.job.get_state() == "waiting-children"
    assert await first.job.remove_child_dependency() is False  # no parent any more
    assert await second.job.remove_child_dependency() is True
    assert await node.job.get_state() == "waiting"  # priority not applied, as BullMQ
    assert await first.job.get_state() == "waiting"  # the child itself stays
    async with Queue("kids", url=flow_backend_url) as kids:
        plain = await kids.add("plain", {})
        assert await plain.remove_child_dependency() is False
        gone = await kids.get_job(first.job.id)
        assert gone is not None
        await gone.remove()
        with pytest.raises(JobNotFoundError):
            await first.job.remove_child_dependency()


async def test_remove_child_dependency_of_a_finished_child_changes_nothing(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    """A.6 removeChildDependency: a child already processed is no dependency (False, its
    value stays); once its parent is gone the call is refused with JobNotFoundError."""
    kid = {"name": "c", "queue": "kids", "data": {"v": 5}}
    node = await flows.add({"name": "p", "queue": "parents", "children": [kid]})
    (child,) = node.children
    async with Worker("kids", child_value, url=flow_backend_url):
        await child.job.wait_until_finished(timeout=15)
    assert await node.job.get_state() == "waiting"
    assert await child.job.remove_child_dependency() is False
    assert await node.job.get_children_values() == {key(child): 5}
    async with Queue("parents", url=flow_backend_url) as parents:
        assert await parents.remove(node.job.id) is True
    with pytest.raises(JobNotFoundError, match="parent of job"):
        await child.job.remove_child_dependency()
    assert await child.job.get_state() == "completed"


async def test_a_parent_with_pending_children_cannot_be_removed_but_a_child_can(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    node = await flows.add({"name": "p", "queue": "parents",
                            "children": [{"name": "c", "queue": "kids"}]})  # fmt: skip
    async with Queue("parents", url=flow_backend_url) as parents:
        with pytest.raises(PendingChildrenError, match="remove the children first"):
            await parents.remove(node.job.id)
        with pytest.raises(PendingChildrenError):
            await node.job.remove()
        assert await node.job.get_state() == "waiting-children"
        await node.children[0].job.remove()  # the last child: the parent runs now
        assert await node.job.get_state() == "waiting"
        assert await parents.remove(node.job.id) is True
        assert await node.job.get_state() == "unknown"


async def _events_of(events: QueueEvents, job_id: str, count: int) -> list[tuple[str, Any]]:
    """The next ``count`` events of job ``job_id`` as (name, prev)."""
    seen: list[tuple[str, Any]] = []
    while len(seen) < count:
        event = await events.next(timeout=10)
        assert event is not None, f"only these events of {job_id}: {seen}"
        if event.job_id == job_id:
            seen.append((event.name, event.data.get("prev")))
    return seen


async def test_a_parent_waiting_for_children_shows_in_its_state_counts_and_events(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    """A.3 step 3 and A.6: ``waiting-children`` is a state like any other on every store."""
    async with (
        Queue("parents", url=flow_backend_url) as parents,
        QueueEvents("parents", url=flow_backend_url, last_id="0", block=0.2) as events,
    ):
        node = await flows.add({"name": "p", "queue": "parents",
                                "children": [{"name": "c", "queue": "kids"}]})  # fmt: skip
        assert await node.job.get_state() == "waiting-children"
        counted = await parents.get_job_counts()
        assert (counted["waiting-children"], counted["waiting"]) == (1, 0)
        assert await parents.count() == 1
        assert [j.id for j in await parents.get_jobs("waiting-children")] == [node.job.id]
        assert await node.children[0].job.remove_child_dependency() is True
        assert await parents.get_job_counts("waiting-children", "waiting") == {
            "waiting-children": 0, "waiting": 1,
        }  # fmt: skip
        assert await _events_of(events, node.job.id, 3) == [
            ("added", None), ("waiting-children", None), ("waiting", "waiting-children"),
        ]  # fmt: skip


async def test_a_step_job_moving_to_waiting_children_is_seen_by_queue_events(
    flows: FlowProducer, flow_backend_url: str
) -> None:
    """A.6 moveToWaitingChildren: event ``waiting-children`` (prev active), then ``waiting``
    (prev waiting-children) when its last child completes."""

    async def step(job: Job) -> Any:
        if (await job.get_dependencies_count())["processed"]:
            return "done"
        parent = {"id": job.id, "queue": f"{default_prefix()}:steps"}
        await flows.add({"name": "kid", "queue": "kids", "data": {"v": 1},
                         "opts": {"parent": parent}})  # fmt: skip
        assert await job.move_to_waiting_children() is True
        raise WaitingChildrenError()

    async with (
        Queue("steps", url=flow_backend_url) as steps,
        QueueEvents("steps", url=flow_backend_url, last_id="0", block=0.2) as events,
    ):
        job = await steps.add("step", {})
        async with Worker("steps", step, url=flow_backend_url):
            await wait_for(lambda: _state_is(job, "waiting-children"), timeout=15, what="parked")
            assert (await steps.get_job_counts("waiting-children"))["waiting-children"] == 1
            async with Worker("kids", child_value, url=flow_backend_url):
                assert await job.wait_until_finished(timeout=15) == "done"
        seen = await _events_of(events, job.id, 7)
    assert seen == [
        ("added", None), ("waiting", None), ("active", "waiting"),
        ("waiting-children", "active"), ("waiting", "waiting-children"),
        ("active", "waiting"), ("completed", "active"),
    ]  # fmt: skip
