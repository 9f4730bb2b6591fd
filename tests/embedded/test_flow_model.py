"""Random flows against a model of BullMQ's parent bookkeeping (bullmq-flows-schedulers.md
A.4-A.6): a parent with children in two queues, each child completed, failed for good
under its policy, removed or detached, in any order; after every step the parent's state, deferred
failure and four kinds of children must be what the model says, on both embedded stores."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard import Queue
from dockyard.backends.base import Finish, Lease
from dockyard.backends.flowstore import FailurePolicy
from dockyard.backends.memory import reset

from .test_flows import node

MODEL = settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
POLICIES: list[FailurePolicy | None] = [None, "fpof", "cpof", "idof", "rdof"]
CHILD = st.tuples(
    st.sampled_from(["ca", "cb"]),
    st.sampled_from(POLICIES),
    st.sampled_from(["complete", "fail", "remove", "detach"]),
)

PARENT = st.sampled_from([{}, {"priority": 2}, {"delay": 3600}])


@dataclass
class Model:
    """The parent as BullMQ keeps it."""

    opts: dict[str, int]
    state: str = "waiting-children"
    defa: str | None = None
    pending: set[str] = field(default_factory=set)
    processed: dict[str, Any] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def release(self, by_removal: bool = False) -> None:
        if by_removal:
            self.state = "waiting"
        elif self.opts.get("delay"):
            self.state = "delayed"
        else:
            self.state = "prioritized" if self.opts.get("priority") else "waiting"

    def release_if_ready(self) -> None:
        if not self.pending and self.state == "waiting-children":
            self.release()

    def step(self, key: str, policy: FailurePolicy | None, outcome: str) -> None:
        if key not in self.pending or (outcome == "fail" and policy is None):
            return
        self.pending.discard(key)
        if outcome == "complete":
            self.processed[key] = key
            self.release_if_ready()
        elif outcome in ("remove", "detach"):
            if not self.pending and self.state == "waiting-children":
                self.release(by_removal=True)
        elif policy == "fpof":
            self.failed.append(key)
            if self.state == "delayed":
                self.opts = {**self.opts, "delay": 0}
            if self.state in ("waiting-children", "delayed"):
                self.defa = f"child {key} failed"
                self.release()
            elif self.state != "failed":
                self.defa = f"child {key} failed"
        elif policy == "cpof":
            self.ignored[key] = f"{key} broke"
            if self.state == "waiting-children":
                self.release()
        else:
            if policy == "idof":
                self.ignored[key] = f"{key} broke"
            self.release_if_ready()

    def view(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "defa": self.defa,
            "deps": {
                "processed": self.processed,
                "unprocessed": sorted(self.pending),
                "failed": sorted(self.failed),
                "ignored": self.ignored,
            },
        }


async def _play(
    url: str, parent_opts: dict[str, int], children: list[tuple[str, FailurePolicy | None, str]]
) -> None:
    model = Model(parent_opts)
    async with Queue("pq", url=url) as pq, Queue("ca", url=url) as ca, Queue("cb", url=url) as cb:
        queues = {"ca": ca, "cb": cb}
        nodes = [node("pq", "p", children=True, **parent_opts)]
        for i, (queue, policy, _) in enumerate(children):
            nodes.append(node(queue, f"c{i}", parent=("pq", "p"), policy=policy))
            model.pending.add(f"bull:{queue}:c{i}")
        await pq.backend.flows.add_flow(nodes)
        for i, (queue, policy, outcome) in enumerate(children):
            key, backend = f"bull:{queue}:c{i}", queues[queue].backend
            if outcome == "remove":
                assert await backend.remove(f"c{i}") == 1
            elif outcome == "detach":  # removeChildDependency: the child stays, unattached
                assert await backend.flows.remove_child_dependency(f"c{i}") is True
                assert await backend.flows.remove_child_dependency(f"c{i}") is False
                assert await backend.get_state(f"c{i}") == "waiting"
                assert await backend.remove(f"c{i}") == 1  # no parent to tell any more
            else:
                fetched = await backend.fetch(Lease(f"t{i}", 60_000, None), 1)
                assert [j.id for j in fetched.jobs] == [f"c{i}"]
                done = outcome == "complete"
                value = f'"{key}"' if done else f"{key} broke"
                await backend.finish(
                    Finish(f"c{i}", f"t{i}", "completed" if done else "failed", value), None
                )
            model.step(key, policy, outcome)
            parent = await pq.get_job("p")
            assert parent is not None
            seen = {
                "state": await parent.get_state(),
                "defa": parent.deferred_failure,
                "deps": await parent.get_dependencies(),
            }
            # Failures are listed by time, then key (a sorted set): equal times are usual
            # on a virtual clock, so only the members are compared.
            seen["deps"]["failed"].sort()
            assert seen == model.view(), (i, outcome, policy)
            counts = await parent.get_dependencies_count()
            assert counts == {
                "processed": len(model.processed), "unprocessed": len(model.pending),
                "ignored": len(model.ignored), "failed": len(model.failed),
            }  # fmt: skip


@MODEL
@given(parent_opts=PARENT, children=st.lists(CHILD, min_size=1, max_size=5))
def test_random_flows_follow_the_model_on_sqlite(
    tmp_path: Path, parent_opts: dict[str, int], children: list[Any]
) -> None:
    asyncio.run(_play(f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db", parent_opts, children))


@MODEL
@given(parent_opts=PARENT, children=st.lists(CHILD, min_size=1, max_size=5))
def test_random_flows_follow_the_model_on_memory(
    parent_opts: dict[str, int], children: list[Any]
) -> None:
    url = f"memory://model-{uuid.uuid4().hex}?clock=manual"
    try:
        asyncio.run(_play(url, parent_opts, children))
    finally:
        reset(url)
