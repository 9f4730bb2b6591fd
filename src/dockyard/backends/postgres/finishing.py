"""Finishing many jobs at once on PostgreSQL: the worker slots that complete in the same
loop turn share one transaction (as on SQLite), and here also their statements: one
UPDATE completes all of them (with their deduplication keys and events), one claim takes
the next jobs for all of them. Jobs it cannot take that way (a lost lock, a parent, a
child still pending) go through the shared per-job code in the same transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..base import Finish, Lease
from ..sqlite import outcomes
from ..sqlite.store import QueueStore
from . import hotpath

if TYPE_CHECKING:
    from .store import PgQueueStore

_COMPLETE_MANY = (
    "WITH v AS (SELECT * FROM unnest(?::text[], ?::text[], ?::text[]) AS v(id, token, value)), "
    "u AS (UPDATE jobs j SET lock_token = NULL, lock_until = NULL, stalled = 0, "
    "atm = j.atm + 1, state = 'completed', score = ?, finished_on = ?, returnvalue = v.value "
    "FROM v WHERE j.qid = ? AND j.id = ANY(?::text[]) AND j.id = v.id AND j.state = 'active' "
    "AND j.lock_token = v.token "
    "AND j.lock_until > ? AND j.parent_id IS NULL AND NOT EXISTS (SELECT 1 FROM dependencies d "
    "WHERE d.parent_qid = ? AND d.parent_id = j.id AND d.state IN ('pending', 'failed')) "
    "RETURNING j.id, j.deid, v.value), "
    "d AS (DELETE FROM dedup x USING u WHERE x.qid = ? AND x.id = u.deid AND x.job_id = u.id "
    "AND x.expires IS NULL), "
    "e AS (INSERT INTO events (qid, ms, name, fields) SELECT ?, ?, 'completed', "
    "json_build_object('jobId', u.id, 'returnvalue', u.value, 'prev', 'active')::text FROM u) "
    "SELECT id FROM u"
)


@dataclass(frozen=True, slots=True)
class FastFinish:
    """A batched finish the group statement may take; called, it runs the shared path."""

    result: Finish
    next_lease: Lease | None
    count: int
    slow: Callable[[QueueStore, int], tuple[int, Any]]

    def __call__(self, s: QueueStore, now: int) -> tuple[int, Any]:
        return self.slow(s, now)

    @property
    def eligible(self) -> bool:
        r = self.result
        lease = self.next_lease
        return (
            r.outcome == "completed"
            and r.token != "0"
            and (lease is None or (lease.limit_max is None and self.count > 0))
        )


def run_batch(
    s: PgQueueStore, batch: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]]
) -> list[Any]:
    """``_run_all`` of the PostgreSQL store: group the eligible finishes, then the rest
    one by one under savepoints (a failing one gives its error to its own caller)."""
    results: list[Any] = [None] * len(batch)
    group = [
        (i, fn) for i, (fn, _, _) in enumerate(batch) if isinstance(fn, FastFinish) and fn.eligible
    ]
    done: set[int] = set()
    if len(group) > 1:
        now = batch[group[0][0]][1][0]
        for i, value in complete_many(s, now, [fn for _, fn in group]).items():
            results[group[i][0]] = value
            done.add(group[i][0])
    for i, (fn, args, _) in enumerate(batch):
        if i in done:
            continue
        s.conn.execute("SAVEPOINT one")
        try:
            results[i] = fn(s, *args)
        except Exception as exc:  # handed to that caller
            s.conn.execute("ROLLBACK TO one")
            results[i] = exc
        s.conn.execute("RELEASE one")
    return results


def complete_many(s: PgQueueStore, now: int, items: list[FastFinish]) -> dict[int, Any]:
    """Complete the jobs of ``items`` in one statement and fetch their next jobs in one
    claim; ``{index: (0, fetched or None)}`` for those taken (the rest are left as they
    were, for the shared path)."""
    qid = s.qid
    rows = s.conn.execute(
        _COMPLETE_MANY,
        (
            [it.result.job_id for it in items],
            [it.result.token for it in items],
            [it.result.value for it in items],
            now, now, qid, [it.result.job_id for it in items], now, qid, qid, qid, now,
        ),
    ).fetchall()  # fmt: skip
    completed = {r[0] for r in rows}
    taken = [i for i, it in enumerate(items) if it.result.job_id in completed]
    if not taken:
        return {}
    s.note_events(len(taken))
    removing = [items[i].result.job_id for i in taken if items[i].result.keep_count == 0]
    if removing:
        s.delete(removing)
    kept = {(items[i].result.keep_count, items[i].result.keep_age) for i in taken}
    for keep_count, keep_age in kept:
        if keep_count > 0 or (keep_count != 0 and keep_age > 0):
            outcomes._retain(s, "completed", now, keep_count, keep_age)
    for i in taken:
        if items[i].result.metrics > 0:
            s.record_metrics("completed", now, items[i].result.metrics)
    wanting = [i for i in taken if items[i].next_lease is not None]
    fetched = hotpath.fetch_many(
        s,
        now,
        [(items[i].next_lease, items[i].count) for i in wanting],  # type: ignore[misc]
    )
    out: dict[int, Any] = {i: (0, None) for i in taken}
    for i, got in zip(wanting, fetched, strict=True):
        out[i] = (0, got)
    if any(not got[0] for got in fetched) or len(wanting) < len(taken):
        s.drained(now)
    return out
