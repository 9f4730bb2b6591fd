"""FlowProducer: add a tree of parent and child jobs at once, and read a tree back.

A parent runs only after all its children are done (a child may live in another queue of
the same prefix) and reads their return values with ``Job.get_children_values``. On
Redis the tree is written as BullMQ's FlowProducer writes it, so Node workers and
dockyard workers complete each other's flows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from .backends import REDIS_SCHEMES, Backend, open_backend, resolve_url
from .backends.flowstore import FailurePolicy, FlowNode
from .backends.redis.keys import validate_queue_name
from .errors import InvalidJobError, InvalidOptionError, NotSupportedError
from .job import Job
from .options import build_options, check_job_ref
from .queue import Queue

#: The most jobs one ``add`` or ``add_bulk`` call may write (all trees together).
MAX_FLOW_JOBS = 10_000
#: The most children ``get_flow`` reads per job.
MAX_CHILDREN = 10_000
#: The keys a node of a tree may have.
NODE_KEYS = ("name", "queue", "data", "opts", "children")
#: Child options (snake_case) and the flag each is stored as (BullMQ's abbreviations).
FAILURE_POLICIES: dict[str, FailurePolicy] = {
    "fail_parent_on_failure": "fpof",
    "continue_parent_on_failure": "cpof",
    "ignore_dependency_on_failure": "idof",
    "remove_dependency_on_failure": "rdof",
}


@dataclass(frozen=True, slots=True)
class JobNode:
    """One job of a flow and the nodes of its children (added, or read by ``get_flow``)."""

    job: Job
    children: tuple[JobNode, ...] = ()


@dataclass(slots=True)
class _Planned:
    """A validated node: what the store gets, the Job handed back, its parent's index."""

    node: FlowNode
    job: Job
    parent: int | None


class FlowProducer:
    """Adds flows (trees of jobs) to the store at ``url``; use ``async with`` or close()."""

    def __init__(self, *, url: str | None = None, prefix: str = "bull") -> None:
        validate_queue_name("flow", prefix)  # checks the prefix
        self.url = resolve_url(url)
        if self.url.split("://", 1)[0].lower() in REDIS_SCHEMES:
            from .backends.redis.address import RedisAddress

            RedisAddress.from_url(self.url)  # a bad option fails here, not at the first add
        self.prefix = prefix
        self._queues: dict[str, Queue] = {}

    def __repr__(self) -> str:
        return f"<FlowProducer {self.prefix!r} on {self.url!r}>"

    async def __aenter__(self) -> FlowProducer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections of every queue this producer used."""
        queues, self._queues = list(self._queues.values()), {}
        for queue in queues:
            await queue.close()

    def _queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(name, prefix=self.prefix, backend=self._open(name))
            self._queues[name] = queue
        return queue

    def _open(self, name: str) -> Backend:
        return open_backend(self.url, name, prefix=self.prefix)

    # -- adding -------------------------------------------------------------------------

    async def add(self, tree: Mapping[str, Any], *, connection: Any = None) -> JobNode:
        """Add one tree ``{"name", "queue", "data", "opts", "children": [...]}`` at once;
        its root node (``node.job``, ``node.children``). Bad input writes nothing. The jobs
        read and change through this producer's connections: use them while it is open.
        On PostgreSQL, ``connection`` (a psycopg connection) writes the tree inside that
        connection's open transaction, as ``Queue.add`` does (a new tree only: not one
        whose root attaches to an existing parent)."""
        return (await self.add_bulk([tree], connection=connection))[0]

    async def add_bulk(
        self, trees: Iterable[Mapping[str, Any]], *, connection: Any = None
    ) -> list[JobNode]:
        """Add several trees in one atomic write; their root nodes, in order
        (``connection``: as for :meth:`add`)."""
        if isinstance(trees, Mapping) or not isinstance(trees, Iterable):
            raise InvalidJobError("add_bulk takes a list of trees (dicts)")
        planned: list[_Planned] = []
        roots: list[int] = []
        seen: set[tuple[str, str]] = set()
        for tree in trees:
            roots.append(len(planned))
            self._plan(tree, planned, seen)
        if not planned:
            return []
        store = self._queue(planned[0].node.queue).backend
        nodes = [p.node for p in planned]
        if connection is not None:
            in_tx = getattr(store, "add_flow_in_transaction", None)
            if in_tx is None:
                raise NotSupportedError(
                    "connection= (adding inside your own transaction) needs the postgresql:// "
                    f"store; the {store.kind!r} store cannot take a connection: drop the argument"
                )
            await in_tx(connection, nodes)
            return [_tree(planned, root) for root in roots]
        flows = getattr(store, "flows", None)
        add_flow = getattr(flows, "add_flow", None)
        if add_flow is None:
            raise NotSupportedError(
                f"flows (parent/child jobs) are not available on the {store.kind!r} store yet; "
                "use the Redis store (redis://)"
            )
        await add_flow(nodes)
        return [_tree(planned, root) for root in roots]

    def _plan(
        self,
        tree: Mapping[str, Any],
        planned: list[_Planned],
        seen: set[tuple[str, str]],
    ) -> None:
        """Validate one tree depth-first (parents first, siblings in order) into ``planned``."""
        first = len(planned)
        on_path: set[int] = set()
        # Entries: (raw node, parent index, path) to visit, or (None, id, "") to leave a node.
        todo: list[tuple[Any, int | None, str]] = [(tree, None, "root")]
        while todo:
            raw, parent, path = todo.pop()
            if raw is None:
                on_path.discard(parent or 0)
                continue
            if id(raw) in on_path:
                raise InvalidJobError(f"flow node {path} contains itself: a tree has no cycles")
            if len(planned) >= MAX_FLOW_JOBS:
                raise InvalidJobError(
                    f"a flow may hold at most {MAX_FLOW_JOBS:,} jobs per call; split it into "
                    "several calls (a root can attach to an existing parent with parent=)"
                )
            index = len(planned)
            planned.append(self._node(raw, path, planned, parent))
            node = planned[index].node
            key = (node.queue, str(node.job.job_id))
            if key in seen:
                raise InvalidJobError(
                    f"flow node {path}: job id {key[1]!r} appears twice in queue {key[0]!r} "
                    "in this call; each job of a flow needs its own id"
                )
            seen.add(key)
            children = raw.get("children") or []
            on_path.add(id(raw))
            todo.append((None, id(raw), ""))
            for i in reversed(range(len(children))):
                todo.append((children[i], index, f"{path}.children[{i}]"))
        root = planned[first].node
        if root.parent_id is not None:
            ours = {(p.node.queue, str(p.node.job.job_id)) for p in planned[first:]}
            if (root.parent_queue, root.parent_id) in ours:
                raise InvalidJobError(
                    f"flow root: its parent {root.parent_id!r} is a job of the same tree; "
                    "a tree has no cycles"
                )

    def _node(self, raw: Any, path: str, planned: list[_Planned], parent: int | None) -> _Planned:
        """One node, checked by Queue.add's rules plus the flow's own."""
        if not isinstance(raw, Mapping):
            raise InvalidJobError(
                f"flow node {path} must be a dict with {', '.join(NODE_KEYS)}, got {raw!r}"
            )
        unknown = sorted(str(k) for k in raw if k not in NODE_KEYS)
        if unknown:
            raise InvalidJobError(
                f"flow node {path} has unknown key(s) {', '.join(unknown)}; a node has "
                f"{', '.join(NODE_KEYS)}"
            )
        queue_name = raw.get("queue")
        validate_queue_name(queue_name, self.prefix)
        children = raw.get("children")
        if children is not None and (
            isinstance(children, (str, bytes, Mapping)) or not isinstance(children, Sequence)
        ):
            raise InvalidJobError(f"flow node {path}: children must be a list of nodes")
        opts = raw.get("opts")
        if opts is None:
            opts = {}
        if not isinstance(opts, Mapping) or not all(isinstance(k, str) for k in opts):
            raise InvalidOptionError(f"flow node {path}: opts must be a dict of options")
        given = dict(opts)
        policy = _policy(given, path)
        attach = given.pop("parent", None)
        if "deduplication" in given:
            raise InvalidOptionError(
                f"flow node {path}: deduplication is not available for jobs of a flow"
            )
        options = build_options(None, **given)
        parent_id: str | None = None
        parent_queue: str | None = None
        if parent is not None:
            if attach is not None:
                raise InvalidOptionError(
                    f"flow node {path}: parent= is only for a tree's root (a child's parent "
                    "is the node above it)"
                )
            above = planned[parent].node
            parent_id, parent_queue = str(above.job.job_id), above.queue
        elif attach is not None:
            parent_id, parent_queue = self._attach(attach, path)
        if policy is not None and parent_id is None:
            raise InvalidOptionError(
                f"flow node {path}: a failure policy applies to a child; this root has no "
                "parent (give it parent={'id': ..., 'queue': ...} or drop the option)"
            )
        job_id = options.job_id if options.job_id is not None else str(uuid.uuid4())
        if parent_id is not None:
            extra: dict[str, Any] = dict(options.extra)
            extra["parent"] = {"id": parent_id, "queue": f"{self.prefix}:{parent_queue}"}
            if policy is not None:
                extra[policy] = True
            options = replace(options, extra=extra)
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidJobError(f"flow node {path}: a name must be a non-empty string: {name!r}")
        assert isinstance(queue_name, str)
        new, job = self._queue(queue_name)._prepare_with(name, raw.get("data"), options)
        job.id = job_id
        node = FlowNode(
            queue=queue_name,
            job=replace(new, job_id=job_id),
            parent_id=parent_id,
            parent_queue=parent_queue,
            on_failure=policy,
            has_children=bool(children),
        )
        return _Planned(node=node, job=job, parent=parent)

    def _attach(self, attach: object, path: str) -> tuple[str, str]:
        """A root's ``parent={"id", "queue": "<prefix>:<name>"}``: (id, queue name)."""
        if not isinstance(attach, Mapping) or set(attach) != {"id", "queue"}:
            raise InvalidOptionError(
                f"flow node {path}: parent must be {{'id': ..., 'queue': "
                f"'{self.prefix}:<queue>'}}, got {attach!r}"
            )
        parent_id = check_job_ref(attach["id"])
        queue_key = attach["queue"]
        if not isinstance(queue_key, str) or ":" not in queue_key:
            raise InvalidOptionError(
                f"flow node {path}: parent queue must be '<prefix>:<queue>', got {queue_key!r}"
            )
        prefix, _, name = queue_key.rpartition(":")
        if prefix != self.prefix:
            raise InvalidOptionError(
                f"flow node {path}: parent queue {queue_key!r} is in prefix {prefix!r}, not "
                f"{self.prefix!r}; a flow lives in one prefix (use a FlowProducer with "
                f"prefix={prefix!r})"
            )
        validate_queue_name(name, self.prefix)
        return parent_id, name

    # -- reading ------------------------------------------------------------------------

    async def get_flow(
        self, queue: str, job_id: str, *, depth: int = 10, max_children: int = 1000
    ) -> JobNode | None:
        """The tree below job ``job_id`` of ``queue`` as it is now, ``depth`` levels deep
        (1: the job alone), at most ``max_children`` children per job; None if no such job.
        Children that no longer exist are left out."""
        validate_queue_name(queue, self.prefix)
        job_id = check_job_ref(job_id)
        for label, value, most in (("depth", depth, 100), ("max_children", max_children,
                                                           MAX_CHILDREN)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise InvalidOptionError(f"{label} must be a whole number 1..{most}, got {value!r}")
        return await self._read(queue, job_id, depth, max_children)

    async def _read(self, queue: str, job_id: str, depth: int, most: int) -> JobNode | None:
        job = await self._queue(queue).backend.get_job(job_id)
        if job is None:
            return None
        if depth <= 1:
            return JobNode(job=job)
        deps = await job.get_dependencies()
        keys = [
            *sorted(deps["processed"]),
            *deps["unprocessed"],
            *sorted(deps["failed"]),
            *sorted(deps["ignored"]),
        ]
        refs = [ref for ref in (self._split(key) for key in keys[:most]) if ref is not None]
        found = await asyncio.gather(*(self._read(q, i, depth - 1, most) for q, i in refs))
        return JobNode(job=job, children=tuple(node for node in found if node is not None))

    def _split(self, key: str) -> tuple[str, str] | None:
        """A child key ``<prefix>:<queue>:<id>`` as (queue, id); None for another prefix.

        Queue names hold no ':', so after our prefix the queue runs to the next ':' and
        the id may hold colons of its own."""
        head = f"{self.prefix}:"
        if not key.startswith(head):
            return None
        queue, sep, job_id = key[len(head) :].partition(":")
        if not sep or not queue or not job_id:
            return None
        return queue, job_id


def _policy(given: dict[str, Any], path: str) -> FailurePolicy | None:
    """Take the failure-policy options out of ``given``: the one set, or None."""
    chosen: list[str] = []
    for option in FAILURE_POLICIES:
        if option in given:
            value = given.pop(option)
            if not isinstance(value, bool):
                raise InvalidOptionError(
                    f"flow node {path}: {option} must be True or False, got {value!r}"
                )
            if value:
                chosen.append(option)
    if len(chosen) > 1:
        raise InvalidOptionError(
            f"flow node {path}: at most one failure policy may be set, got {', '.join(chosen)}"
        )
    return FAILURE_POLICIES[chosen[0]] if chosen else None


def _tree(planned: Sequence[_Planned], root: int) -> JobNode:
    """The JobNode of ``planned[root]`` with its descendants (they follow it in order)."""
    kids: dict[int, list[int]] = {}
    end = root + 1
    while end < len(planned) and planned[end].parent is not None:
        kids.setdefault(planned[end].parent or 0, []).append(end)
        end += 1
    built: dict[int, JobNode] = {}
    for index in reversed(range(root, end)):
        children = tuple(built.pop(k) for k in kids.get(index, []))
        built[index] = JobNode(job=planned[index].job, children=children)
    return built[root]
