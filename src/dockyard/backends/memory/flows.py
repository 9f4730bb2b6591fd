"""Flows in a memory store: parents, children and their bookkeeping, as BullMQ on Redis.

A child's record names its parent (prefix, queue, id) and its failure policy; a parent's
children are kept in its queue's ``deps`` by the child's full key ``<prefix>:<queue>:<id>``
in one of four collections: pending (Redis ``:dependencies``), processed (return value
JSON), ignored (reason; Redis ``:failed``) and failed (by time; Redis ``:unsuccessful``).
The transitions run under the store's lock and follow lib.lua's "Flows" helpers; a parent
may be in another queue of the same store and prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import InvalidOptionError
from ..flowparts import flow_refused, refusal
from ..flowstore import FlowNode
from .structures import ZSet

if TYPE_CHECKING:
    from .backend import MemoryBackend
    from .state import QueueState, Rec

Queues = dict[tuple[str, str], "QueueState"]
#: A parent's children as read: processed {key: value}, pending keys, failed keys, ignored.
Read = tuple[dict[str, str], list[str], list[str], dict[str, str]]


class Deps:
    """A parent's children by kind (each key in one collection at most)."""

    __slots__ = ("failed", "ignored", "pending", "processed")

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.processed: dict[str, str] = {}
        self.ignored: dict[str, str] = {}
        self.failed = ZSet()

    def discard(self, key: str) -> None:
        self.pending.discard(key)
        self.processed.pop(key, None)
        self.ignored.pop(key, None)
        self.failed.remove(key)


def _deps(q: QueueState, job_id: str) -> Deps:
    deps = q.deps.get(job_id)
    if deps is None:
        deps = q.deps[job_id] = Deps()
    return deps


def completion_refused(q: QueueState, job_id: str) -> int:
    """-4 while children are pending, -9 after one failed with fpof, else 0."""
    deps = q.deps.get(job_id)
    if deps is None:
        return 0
    if deps.pending:
        return -4
    return -9 if len(deps.failed) else 0


def pending_count(q: QueueState, job_id: str) -> int:
    deps = q.deps.get(job_id)
    return 0 if deps is None else len(deps.pending)


# -- the parent side ---------------------------------------------------------------------


def release(pq: QueueState, parent: Rec, now: int) -> None:
    """A parent just taken out of waiting-children goes where it runs: delayed by its
    ``delay``, else prioritized by its ``priority``, else next in wait."""
    if parent.delay > 0:
        due = now + parent.delay
        pq.delayed.add(parent.id, due * 4096)
        parent.where = "delayed"
        pq.emit(now, "delayed", {"jobId": parent.id, "delay": str(due)})
    else:
        pq.enqueue_ready(parent, parent.priority, True)
        pq.emit(now, "waiting", {"jobId": parent.id, "prev": "waiting-children"})
    if not pq.paused:
        pq.wake_workers()


def release_if_ready(pq: QueueState, parent_id: str, now: int) -> None:
    """Release the parent when no child is pending and it waits for children."""
    parent = pq.jobs.get(parent_id)
    if parent is None or pending_count(pq, parent_id) > 0:
        return
    if pq.waiting_children.remove(parent_id):
        release(pq, parent, now)


def _parent_queue(q: QueueState, rec: Rec) -> tuple[QueueState, str] | None:
    assert rec.parent is not None
    prefix, name, parent_id = rec.parent
    pq = q if (prefix, name) == (q.prefix, q.name) else q.peers.get((prefix, name))
    return None if pq is None else (pq, parent_id)


def child_finished(q: QueueState, rec: Rec, completed: bool, value: str, now: int) -> None:
    """A child completed (its value recorded) or failed for good (its policy applied)."""
    found = _parent_queue(q, rec)
    if found is None:
        return
    pq, parent_id = found
    deps = pq.deps.get(parent_id)
    key = q.key_prefix + rec.id
    if deps is None or key not in deps.pending:
        return
    policy = rec.policy
    if not completed and policy is None:
        return
    deps.pending.discard(key)
    if completed:
        deps.processed[key] = value
        release_if_ready(pq, parent_id, now)
    elif policy == "fpof":
        deps.failed.add(key, now)
        parent = pq.jobs.get(parent_id)
        if parent is None:
            return
        moved = pq.waiting_children.remove(parent_id)
        if not moved and pq.delayed.remove(parent_id):
            parent.delay = 0
            moved = True
        if moved or parent.where != "failed":
            # The next worker to fetch the parent fails it at once with this reason.
            parent.defa = f"child {key} failed"
        if moved:
            release(pq, parent, now)
    elif policy == "cpof":
        deps.ignored[key] = value
        parent = pq.jobs.get(parent_id)
        if parent is not None and pq.waiting_children.remove(parent_id):
            release(pq, parent, now)
    else:
        if policy == "idof":
            deps.ignored[key] = value
        release_if_ready(pq, parent_id, now)


def child_deleted(q: QueueState, rec: Rec) -> None:
    """A deleted child is no longer a dependency; a parent left with none goes next in
    wait (its priority and delay are not applied, as BullMQ's removal)."""
    found = _parent_queue(q, rec)
    if found is None:
        return
    pq, parent_id = found
    deps = pq.deps.get(parent_id)
    key = q.key_prefix + rec.id
    if deps is None or key not in deps.pending:
        return
    deps.pending.discard(key)
    parent = pq.jobs.get(parent_id)
    if deps.pending or parent is None or not pq.waiting_children.remove(parent_id):
        return
    pq.enqueue_ready(parent, 0, True)
    pq.emit(pq.now_ms(), "waiting", {"jobId": parent_id, "prev": "waiting-children"})
    if not pq.paused:
        pq.wake_workers()


def remove_child_dependency(q: QueueState, job_id: str) -> int:
    """removeChildDependency: 0 detached (a parent left with none pending goes to wait),
    1 no parent or not a pending dependency (nothing changes), -1 no job, -5 no parent."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    if rec.parent is None:
        return 1
    found = _parent_queue(q, rec)
    if found is None or found[1] not in found[0].jobs:
        return -5
    pq, parent_id = found
    deps = pq.deps.get(parent_id)
    if deps is None or q.key_prefix + rec.id not in deps.pending:
        return 1
    child_deleted(q, rec)
    rec.parent = None
    rec.policy = None
    return 0


def obliterating(q: QueueState) -> None:
    """Before a queue's jobs are all dropped: its children of other queues' parents are no
    longer dependencies, and its parents keep no children records."""
    own = (q.prefix, q.name)
    for rec in q.jobs.values():
        if rec.parent is not None and rec.parent[:2] != own:
            child_deleted(q, rec)
    q.deps.clear()
    q.waiting_children = ZSet()


# -- adding a flow -----------------------------------------------------------------------


def _check(queues: Queues, prefix: str, nodes: Sequence[FlowNode]) -> None:
    """Refuse the whole tree before anything is stored: a missing parent (-5) or a child
    already attached to another live parent (-7)."""
    planned: set[tuple[str, str]] = set()
    for node in nodes:
        parent = None
        if node.parent_id is not None:
            parent = (prefix, node.parent_queue or node.queue, node.parent_id)
            pq = queues.get(parent[:2])
            if parent[1:] not in planned and (pq is None or node.parent_id not in pq.jobs):
                raise flow_refused(-5, node)
        job_id = node.job.job_id
        if not job_id:
            continue
        planned.add((node.queue, job_id))
        q = queues.get((prefix, node.queue))
        rec = None if q is None else q.jobs.get(job_id)
        if rec is None or parent is None or rec.parent is None or rec.parent == parent:
            continue
        old = queues.get(rec.parent[:2])
        if old is not None and rec.parent[2] in old.jobs:
            raise flow_refused(-7, node)


def _insert_parent(q: QueueState, node: FlowNode, now: int, manual: bool) -> str:
    """addParentJob: stored with its delay and priority (applied at release), waiting."""
    from .state import Rec, parse_opts

    job = node.job
    q.counter += 1
    job_id = job.job_id or str(q.counter)
    options = parse_opts(job.opts)
    timestamp = now if manual and options.timestamp is None else job.timestamp
    rec = Rec(job_id, job.name, job.data, job.opts, options, timestamp, job.delay, job.priority)
    rec.where = "waiting-children"
    q.jobs[job_id] = rec
    q.waiting_children.add(job_id, timestamp)
    q.emit(now, "added", {"jobId": job_id, "name": job.name})
    q.emit(now, "waiting-children", {"jobId": job_id})
    return job_id


def add_flow(
    queues: Queues, prefix: str, nodes: Sequence[FlowNode], now: int, manual: bool
) -> list[str]:
    """Store a tree (parents before their descendants); all or nothing."""
    _check(queues, prefix, nodes)
    ids: list[str] = []
    parents: dict[tuple[str, str], QueueState] = {}
    for node in nodes:
        q = queues[(prefix, node.queue)]
        job_id = node.job.job_id
        if job_id and job_id in q.jobs:
            q.counter += 1
            q.emit(now, "duplicated", {"jobId": job_id})
        elif node.has_children:
            job_id = _insert_parent(q, node, now, manual)
        else:
            added = q.add(node.job, now, manual)
            if added != (job_id or added):  # deduplicated: no new child to attach
                ids.append(added)
                continue
            job_id = added
        ids.append(job_id)
        if node.parent_id is None:
            continue
        pq = queues[(prefix, node.parent_queue or node.queue)]
        rec = q.jobs[job_id]
        rec.parent = (prefix, pq.name, node.parent_id)
        rec.policy = node.on_failure
        deps = _deps(pq, node.parent_id)
        key = q.key_prefix + job_id
        deps.discard(key)
        if rec.where == "completed":
            deps.processed[key] = rec.returnvalue or "null"
        else:
            deps.pending.add(key)
        parents[(pq.name, node.parent_id)] = pq
    for (_, parent_id), pq in parents.items():
        release_if_ready(pq, parent_id, now)
    return ids


# -- step jobs -----------------------------------------------------------------------------


def move_to_waiting_children(
    q: QueueState, job_id: str, token: str, child_key: str | None, now: int
) -> int:
    """moveToWaitingChildren: 0 moved, 1 nothing pending (stays active), or a code."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    deps = q.deps.get(job_id)
    if deps is not None and len(deps.failed):
        return -9
    if deps is None or not deps.pending:
        return 1
    if child_key is not None and child_key not in deps.pending:
        return 1
    code = q.take_lock(job_id, token, now)
    if code < 0:
        return code
    if not q.deactivate(job_id):
        return -3
    q.stalled.pop(job_id, None)
    q.waiting_children.add(job_id, now)
    rec.where = "waiting-children"
    q.emit(now, "waiting-children", {"jobId": job_id, "prev": "active"})
    return 0


class MemoryFlows:
    """The FlowStore of a memory backend: each operation under the store's lock."""

    def __init__(self, backend: MemoryBackend, decode: Callable[[str | None], Any]) -> None:
        self._backend = backend
        self._decode = decode

    async def add_flow(self, nodes: Sequence[FlowNode]) -> list[str]:
        """Store a whole tree at once; the ids in ``nodes`` order."""
        b = self._backend
        b._check_open()
        for node in nodes:
            if not isinstance(node, FlowNode):
                raise InvalidOptionError(f"add_flow takes FlowNode objects, got {node!r}")
        store = b._store
        for node in nodes:  # every queue named exists before the lock is taken
            store.queue(b.prefix, node.queue)
            if node.parent_id is not None:
                store.queue(b.prefix, node.parent_queue or node.queue)
        with store.lock:
            clock = b.clock
            ids = add_flow(store.queues, b.prefix, nodes, clock.now_ms(), clock.manual)
        await asyncio.sleep(0)
        return ids

    async def move_to_waiting_children(
        self, job_id: str, token: str, child_key: str | None, now_ms: int
    ) -> bool:
        """True: the job now waits for its children; False: nothing pending, it stays active.
        On a virtual clock the store's time is used, not ``now_ms``."""
        b = self._backend
        b._check_open()
        with b._lock:
            now = b.clock.now_ms() if b.clock.manual else now_ms
            code = move_to_waiting_children(b._q, job_id, token, child_key, now)
        await asyncio.sleep(0)
        if code < 0:
            raise refusal(code, job_id, "move to waiting-children", 0)
        return code == 0

    async def remove_child_dependency(self, job_id: str) -> bool:
        """Detach the job from its parent: True if it was a pending dependency (a parent
        left with none goes to wait), False if it had no parent or was not pending."""
        b = self._backend
        b._check_open()
        with b._lock:
            code = remove_child_dependency(b._q, job_id)
        await asyncio.sleep(0)
        if code < 0:
            raise refusal(code, job_id, "remove_child_dependency", 0)
        return code == 0

    async def _read(self, job_id: str) -> Read:
        b = self._backend
        b._check_open()
        with b._lock:
            deps = b._q.deps.get(job_id)
            if deps is None:
                found: Read = ({}, [], [], {})
            else:
                found = (dict(deps.processed), sorted(deps.pending),
                         deps.failed.by_rank(0, -1, False), dict(deps.ignored))  # fmt: skip
        await asyncio.sleep(0)
        return found

    async def children_values(self, job_id: str) -> dict[str, Any]:
        """``{child key: return value}`` of the children that completed."""
        processed = (await self._read(job_id))[0]
        return {key: self._decode(value) for key, value in processed.items()}

    async def ignored_failures(self, job_id: str) -> dict[str, str]:
        """``{child key: reason}`` of children failed with cpof/idof."""
        return (await self._read(job_id))[3]

    async def dependencies(self, job_id: str) -> dict[str, Any]:
        """All four kinds of children, as BullMQ's ``getDependencies()`` without options."""
        processed, pending, failed, ignored = await self._read(job_id)
        return {
            "processed": {key: self._decode(value) for key, value in processed.items()},
            "unprocessed": pending,
            "failed": failed,
            "ignored": ignored,
        }

    async def dependencies_count(self, job_id: str) -> dict[str, int]:
        """How many children are processed, unprocessed, ignored and failed."""
        processed, pending, failed, ignored = await self._read(job_id)
        return {
            "processed": len(processed),
            "unprocessed": len(pending),
            "ignored": len(ignored),
            "failed": len(failed),
        }
