"""Flows in an SQLite file: parents, children and their bookkeeping, as BullMQ on Redis.

A child row names its parent (``parent_qid``, ``parent_id``) and its failure policy; a
parent's children are rows of ``dependencies`` keyed by the child's full key
``<prefix>:<queue>:<id>``: ``pending`` (Redis ``:dependencies``), ``processed`` (value:
the return value JSON), ``ignored`` (value: the reason; Redis ``:failed``) and ``failed``
(ms: when; Redis ``:unsuccessful``). The transitions run in the caller's transaction and
follow lib.lua's "Flows" helpers step by step; a parent may be in another queue of the
same file and prefix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import InvalidOptionError
from ..flowparts import flow_refused, refusal
from ..flowstore import FlowNode

if TYPE_CHECKING:
    from .backend import SqliteBackend
    from .store import QueueStore

_DEPS = "FROM dependencies WHERE parent_qid = ? AND parent_id = ?"


# -- queues of the same file ---------------------------------------------------------------


def peer(s: QueueStore, qid: int) -> QueueStore:
    """The store of queue ``qid`` on the same connection (``s`` itself for its own),
    guarded for this transaction (``QueueStore.guard``)."""
    if qid == s.qid:
        return s
    other = s.peers.get(qid)
    if other is None:
        prefix, name = s.conn.execute(
            "SELECT prefix, name FROM queues WHERE qid = ?", (qid,)
        ).fetchone()
        other = s.peers[qid] = type(s)(s.conn, prefix, name)
    s.guard(other)
    return other


def peer_named(s: QueueStore, name: str) -> QueueStore:
    """The store of queue ``name`` under the same prefix (created if new), guarded for
    this transaction (``QueueStore.guard``)."""
    if name == s.name:
        return s
    for other in s.peers.values():
        if other.name == name:
            s.guard(other)
            return other
    other = type(s)(s.conn, s.prefix, name)
    s.peers[other.qid] = other
    s.guard(other)
    return other


def _now() -> int:
    return int(time.time() * 1000)


# -- the parent side ---------------------------------------------------------------------


def pending_count(s: QueueStore, job_id: str) -> int:
    row = s.conn.execute(
        f"SELECT count(*) {_DEPS} AND state = 'pending'", (s.qid, job_id)
    ).fetchone()
    return int(row[0])


def completion_refused(s: QueueStore, job_id: str) -> int:
    """-4 while children are pending, -9 after one failed with fpof, else 0."""
    if pending_count(s, job_id) > 0:
        return -4
    row = s.conn.execute(f"SELECT 1 {_DEPS} AND state = 'failed' LIMIT 1", (s.qid, job_id))
    return -9 if row.fetchone() is not None else 0


def release(pq: QueueStore, parent_id: str, now: int) -> None:
    """A parent just taken out of waiting-children goes where it runs: delayed by its
    ``delay``, else prioritized by its ``priority``, else next in wait."""
    priority, delay = pq.conn.execute(
        "SELECT priority, delay FROM jobs WHERE qid = ? AND id = ?", (pq.qid, parent_id)
    ).fetchone()
    if delay > 0:
        due = now + delay
        pq.place(parent_id, "delayed", due * 4096)
        pq.emit(now, "delayed", {"jobId": parent_id, "delay": str(due)})
        return
    state, score = pq.ready_place(priority, True)
    pq.place(parent_id, state, score)
    pq.emit(now, "waiting", {"jobId": parent_id, "prev": "waiting-children"})


def release_if_ready(pq: QueueStore, parent_id: str, now: int) -> None:
    """Release the parent when no child is pending and it waits for children."""
    if pending_count(pq, parent_id) == 0 and pq.job_state(parent_id) == "waiting-children":
        release(pq, parent_id, now)


def _resolve(
    pq: QueueStore, parent_id: str, child_key: str, state: str, value: str | None, ms: int | None
) -> bool:
    """A pending dependency becomes ``state``; False when it was not pending."""
    cur = pq.conn.execute(
        "UPDATE dependencies SET state = ?, value = ?, ms = ? WHERE parent_qid = ? AND "
        "parent_id = ? AND child_key = ? AND state = 'pending'",
        (state, value, ms, pq.qid, parent_id, child_key),
    )
    return cur.rowcount > 0


def child_finished(
    s: QueueStore,
    job_id: str,
    parent: tuple[int, str, str | None],
    completed: bool,
    value: str,
    now: int,
) -> None:
    """A child completed (its value recorded) or failed for good (its policy applied)."""
    parent_qid, parent_id, policy = parent
    pq = peer(s, parent_qid)
    key = s.key_prefix + job_id
    if completed:
        if _resolve(pq, parent_id, key, "processed", value, None):
            release_if_ready(pq, parent_id, now)
        return
    if policy == "fpof":
        if not _resolve(pq, parent_id, key, "failed", None, now):
            return
        state = pq.job_state(parent_id)
        if state is None:
            return
        moved = state in ("waiting-children", "delayed")
        if moved or state != "failed":
            # The next worker to fetch the parent fails it at once with this reason.
            pq.conn.execute(
                "UPDATE jobs SET defa = ?, delay = CASE WHEN state = 'delayed' THEN 0 "
                "ELSE delay END WHERE qid = ? AND id = ?",
                (f"child {key} failed", pq.qid, parent_id),
            )
        if moved:
            release(pq, parent_id, now)
    elif policy in ("cpof", "idof"):
        if not _resolve(pq, parent_id, key, "ignored", value, None):
            return
        if policy == "idof":
            release_if_ready(pq, parent_id, now)
        elif pq.job_state(parent_id) == "waiting-children":
            release(pq, parent_id, now)
    elif policy == "rdof":
        cur = pq.conn.execute(
            f"DELETE {_DEPS} AND child_key = ? AND state = 'pending'", (pq.qid, parent_id, key)
        )
        if cur.rowcount > 0:
            release_if_ready(pq, parent_id, now)


def children_deleted(s: QueueStore, children: Sequence[tuple[str, int, str]]) -> None:
    """Deleted children ``(id, parent qid, parent id)`` are no longer dependencies; a
    parent left with none goes next in wait (its priority and delay are not applied, as
    BullMQ's removal)."""
    now = _now()
    for job_id, parent_qid, parent_id in children:
        pq = peer(s, parent_qid)
        cur = s.conn.execute(
            f"DELETE {_DEPS} AND child_key = ? AND state = 'pending'",
            (parent_qid, parent_id, s.key_prefix + job_id),
        )
        if cur.rowcount == 0 or pending_count(pq, parent_id) > 0:
            continue
        if pq.job_state(parent_id) != "waiting-children":
            continue
        pq.place(parent_id, "paused" if pq.paused() else "wait", -pq.next_seq())
        pq.emit(now, "waiting", {"jobId": parent_id, "prev": "waiting-children"})


def remove_child_dependency(s: QueueStore, job_id: str) -> int:
    """removeChildDependency: 0 detached (a parent left with none pending goes to wait),
    1 no parent or not a pending dependency (nothing changes), -1 no job, -5 no parent."""
    row = s.conn.execute(
        "SELECT parent_qid, parent_id FROM jobs WHERE qid = ? AND id = ?", (s.qid, job_id)
    ).fetchone()
    if row is None:
        return -1
    parent_qid, parent_id = row
    if parent_id is None:
        return 1
    if peer(s, parent_qid).job_state(parent_id) is None:
        return -5
    found = s.conn.execute(
        f"SELECT 1 {_DEPS} AND child_key = ? AND state = 'pending'",
        (parent_qid, parent_id, s.key_prefix + job_id),
    ).fetchone()
    if found is None:
        return 1
    children_deleted(s, [(job_id, parent_qid, parent_id)])
    s.conn.execute(
        "UPDATE jobs SET parent_qid = NULL, parent_id = NULL, parent_policy = NULL "
        "WHERE qid = ? AND id = ?",
        (s.qid, job_id),
    )
    return 0


def forget_children_of(s: QueueStore, job_ids: Sequence[str]) -> None:
    """Deleted jobs keep no children records (Redis deletes the parent's keys)."""
    s.conn.executemany(
        "DELETE FROM dependencies WHERE parent_qid = ? AND parent_id = ?",
        [(s.qid, job_id) for job_id in job_ids],
    )


def obliterating(s: QueueStore) -> None:
    """Before a queue's jobs are all deleted: its children of other queues' parents are no
    longer dependencies, and its parents keep no children records."""
    rows = s.conn.execute(
        "SELECT id, parent_qid, parent_id FROM jobs WHERE qid = ? AND parent_id IS NOT NULL "
        "AND parent_qid != ?",
        (s.qid, s.qid),
    ).fetchall()
    children_deleted(s, [(r[0], r[1], r[2]) for r in rows])
    s.conn.execute("DELETE FROM dependencies WHERE parent_qid = ?", (s.qid,))


# -- adding a flow -----------------------------------------------------------------------


def _insert_parent(q: QueueStore, node: FlowNode, job_id: str, now: int) -> None:
    """addParentJob: stored with its delay and priority (applied at release), waiting."""
    job = node.job
    q.conn.execute(
        "INSERT INTO jobs (qid, id, name, data, opts, timestamp, delay, priority, state, "
        "score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'waiting-children', ?)",
        (q.qid, job_id, job.name, job.data, job.opts, job.timestamp, job.delay, job.priority,
         job.timestamp),
    )  # fmt: skip
    q.emit(now, "added", {"jobId": job_id, "name": job.name})
    q.emit(now, "waiting-children", {"jobId": job_id})


def _attach(q: QueueStore, job_id: str, pq: QueueStore, parent_id: str, node: FlowNode) -> None:
    q.conn.execute(
        "UPDATE jobs SET parent_qid = ?, parent_id = ?, parent_policy = ? WHERE qid = ? AND id = ?",
        (pq.qid, parent_id, node.on_failure, q.qid, job_id),
    )
    row = q.conn.execute(
        "SELECT state, returnvalue FROM jobs WHERE qid = ? AND id = ?", (q.qid, job_id)
    ).fetchone()
    state, value = ("processed", row[1] or "null") if row[0] == "completed" else ("pending", None)
    pq.conn.execute(
        "INSERT OR REPLACE INTO dependencies (parent_qid, parent_id, child_key, state, value) "
        "VALUES (?, ?, ?, ?, ?)",
        (pq.qid, parent_id, q.key_prefix + job_id, state, value),
    )


def add_flow(s: QueueStore, nodes: Sequence[FlowNode], now: int) -> list[str]:
    """Store a tree (parents before their descendants) in the caller's transaction; a
    missing parent or a duplicate child of another parent raises (undoing it all)."""
    ids: list[str] = []
    parents: dict[tuple[int, str], QueueStore] = {}
    for node in nodes:
        q = peer_named(s, node.queue)
        pq: QueueStore | None = None
        if node.parent_id is not None:
            pq = peer_named(s, node.parent_queue or node.queue)
            if pq.job_state(node.parent_id) is None:
                raise flow_refused(-5, node)
        job_id = node.job.job_id
        if job_id and q.job_state(job_id) is not None:
            _duplicate(q, job_id, pq, node, now)
        elif node.has_children:
            job_id = job_id or str(q.next_counter())
            _insert_parent(q, node, job_id, now)
        else:
            added = q.add(node.job, now)
            if added != (job_id or added):  # deduplicated: no new child to attach
                ids.append(added)
                continue
            job_id = added
        ids.append(job_id)
        if pq is not None and node.parent_id is not None:
            _attach(q, job_id, pq, node.parent_id, node)
            parents[(pq.qid, node.parent_id)] = pq
    for (_, parent_id), pq in parents.items():
        release_if_ready(pq, parent_id, now)
    return ids


def _duplicate(q: QueueStore, job_id: str, pq: QueueStore | None, node: FlowNode, now: int) -> None:
    """A node whose id exists: re-attached when it has no live parent or the same one."""
    q.next_counter()
    if pq is not None:
        row = q.conn.execute(
            "SELECT parent_qid, parent_id FROM jobs WHERE qid = ? AND id = ?", (q.qid, job_id)
        ).fetchone()
        other = row[1] is not None and (row[0], row[1]) != (pq.qid, node.parent_id)
        if other and peer(q, row[0]).job_state(row[1]) is not None:
            raise flow_refused(-7, node)
    q.emit(now, "duplicated", {"jobId": job_id})


# -- step jobs and readers -----------------------------------------------------------------


def move_to_waiting_children(
    s: QueueStore, job_id: str, token: str, child_key: str | None, now: int
) -> int:
    """moveToWaitingChildren: 0 moved, 1 nothing pending (stays active), or a code."""
    if s.job_state(job_id) is None:
        return -1
    if s.conn.execute(f"SELECT 1 {_DEPS} AND state = 'failed'", (s.qid, job_id)).fetchone():
        return -9
    if child_key is not None:
        row = s.conn.execute(
            f"SELECT 1 {_DEPS} AND child_key = ? AND state = 'pending'",
            (s.qid, job_id, child_key),
        ).fetchone()
        if row is None:
            return 1
    elif pending_count(s, job_id) == 0:
        return 1
    code = s.take_lock(job_id, token, now)
    if code < 0:
        return code
    if s.job_state(job_id) != "active":
        return -3
    s.conn.execute(
        "UPDATE jobs SET state = 'waiting-children', score = ?, lock_token = NULL, "
        "lock_until = NULL, stalled = 0 WHERE qid = ? AND id = ?",
        (now, s.qid, job_id),
    )
    s.emit(now, "waiting-children", {"jobId": job_id, "prev": "active"})
    return 0


def read_children(s: QueueStore, job_id: str) -> list[tuple[str, str, str | None]]:
    """(child key, state, value) of every child recorded, failures in time order."""
    rows = s.conn.execute(
        f"SELECT child_key, state, value {_DEPS} ORDER BY ms, child_key", (s.qid, job_id)
    ).fetchall()
    return [(str(r[0]), str(r[1]), r[2]) for r in rows]


class SqliteFlows:
    """The FlowStore of an SQLite backend: flow transitions and reads, each one transaction."""

    def __init__(self, backend: SqliteBackend, decode: Callable[[str | None], Any]) -> None:
        self._backend = backend
        self._decode = decode

    async def add_flow(self, nodes: Sequence[FlowNode]) -> list[str]:
        """Store a whole tree in one transaction; the ids in ``nodes`` order."""
        for node in nodes:
            if not isinstance(node, FlowNode):
                raise InvalidOptionError(f"add_flow takes FlowNode objects, got {node!r}")
        ids: list[str] = await self._backend._run(add_flow, list(nodes), _now())
        return ids

    async def move_to_waiting_children(
        self, job_id: str, token: str, child_key: str | None, now_ms: int
    ) -> bool:
        """True: the job now waits for its children; False: nothing pending, it stays active."""
        code: int = await self._backend._run(
            move_to_waiting_children, job_id, token, child_key, now_ms
        )
        if code < 0:
            raise refusal(code, job_id, "move to waiting-children", 0)
        return code == 0

    async def remove_child_dependency(self, job_id: str) -> bool:
        """Detach the job from its parent: True if it was a pending dependency (a parent
        left with none goes to wait), False if it had no parent or was not pending."""
        code: int = await self._backend._run(remove_child_dependency, job_id)
        if code < 0:
            raise refusal(code, job_id, "remove_child_dependency", 0)
        return code == 0

    async def _children(self, job_id: str) -> list[tuple[str, str, str | None]]:
        rows: list[tuple[str, str, str | None]] = await self._backend._run(
            read_children, job_id, write=False
        )
        return rows

    async def children_values(self, job_id: str) -> dict[str, Any]:
        """``{child key: return value}`` of the children that completed."""
        rows = await self._children(job_id)
        return {key: self._decode(value) for key, state, value in rows if state == "processed"}

    async def ignored_failures(self, job_id: str) -> dict[str, str]:
        """``{child key: reason}`` of children failed with cpof/idof."""
        rows = await self._children(job_id)
        return {key: value or "" for key, state, value in rows if state == "ignored"}

    async def dependencies(self, job_id: str) -> dict[str, Any]:
        """All four kinds of children, as BullMQ's ``getDependencies()`` without options."""
        rows = await self._children(job_id)
        return {
            "processed": {k: self._decode(v) for k, st, v in rows if st == "processed"},
            "unprocessed": sorted(k for k, st, _ in rows if st == "pending"),
            "failed": [k for k, st, _ in rows if st == "failed"],
            "ignored": {k: v or "" for k, st, v in rows if st == "ignored"},
        }

    async def dependencies_count(self, job_id: str) -> dict[str, int]:
        """How many children are processed, unprocessed, ignored and failed."""
        rows = await self._children(job_id)
        counts = {"processed": 0, "unprocessed": 0, "ignored": 0, "failed": 0}
        names = {"processed": "processed", "pending": "unprocessed", "ignored": "ignored",
                 "failed": "failed"}  # fmt: skip
        for _, state, _ in rows:
            counts[names[state]] += 1
        return counts

