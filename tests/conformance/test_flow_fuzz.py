"""Generated trees (Hypothesis): a valid tree is stored and read back by get_flow with the
same shape; an invalid one is refused with InvalidJobError/InvalidOptionError and nothing
is written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard import FlowProducer, InvalidJobError, InvalidOptionError, JobNode, Queue

QUEUES = ["q1", "q2", "q3"]
POLICY_OPTIONS = ["fail_parent_on_failure", "ignore_dependency_on_failure"]

OPTS = st.fixed_dictionaries(
    {},
    optional={
        "job_id": st.sampled_from(["x", "y", "z"]),
        "priority": st.integers(0, 3),
        "delay": st.sampled_from([0, 30]),
        **{name: st.booleans() for name in POLICY_OPTIONS},
    },
)
NODE = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b"] * 4 + [""]), "queue": st.sampled_from(QUEUES)},
    optional={"opts": OPTS, "data": st.dictionaries(st.text("ab", max_size=2), st.integers(0, 9))},
)
TREES = st.recursive(
    NODE,
    lambda kids: st.builds(lambda n, c: {**n, "children": c}, NODE, st.lists(kids, max_size=3)),
    max_leaves=12,
)


def _nodes(tree: dict[str, Any], root: bool = True) -> Iterator[tuple[dict[str, Any], bool]]:
    yield tree, root
    for child in tree.get("children", []):
        yield from _nodes(child, False)


def _valid(tree: dict[str, Any]) -> bool:
    """The rules, written independently of FlowProducer."""
    ids: list[tuple[str, str]] = []
    for node, root in _nodes(tree):
        opts = node.get("opts", {})
        policies = sum(bool(opts.get(name)) for name in POLICY_OPTIONS)
        if not node["name"] or policies > 1 or (root and policies):
            return False
        if "job_id" in opts:
            ids.append((node["queue"], opts["job_id"]))
    return len(ids) == len(set(ids))


def _given_shape(tree: dict[str, Any]) -> tuple[Any, ...]:
    kids = tuple(sorted(_given_shape(c) for c in tree.get("children", [])))
    return (tree["queue"], tree["name"], kids)


def _read_shape(node: JobNode) -> tuple[Any, ...]:
    kids = tuple(sorted(_read_shape(c) for c in node.children))
    return (node.job.queue_name, node.job.name, kids)


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=TREES)
def test_generated_trees_are_stored_and_read_back_or_refused(
    flow_backend_url: str, tree: dict[str, Any]
) -> None:
    # A fresh corner of the store per example; its hash tag keeps a flow in one slot on a
    # Redis Cluster.
    prefix = "{h" + uuid.uuid4().hex[:8] + "}"

    async def main() -> None:
        async with FlowProducer(url=flow_backend_url, prefix=prefix) as flows:
            if not _valid(tree):
                try:
                    await flows.add(tree)
                except (InvalidJobError, InvalidOptionError):
                    pass
                else:
                    raise AssertionError(f"an invalid tree was accepted: {tree!r}")
            else:
                node = await flows.add(tree)
                read = await flows.get_flow(node.job.queue_name, node.job.id, depth=100)
                assert read is not None
                assert _read_shape(read) == _read_shape(node) == _given_shape(tree)
                return
        for name in QUEUES:
            async with Queue(name, url=flow_backend_url, prefix=prefix) as queue:
                assert sum((await queue.get_job_counts()).values()) == 0

    asyncio.run(main())
