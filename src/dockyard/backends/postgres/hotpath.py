"""The hot path of the PostgreSQL store in as few round trips as the common case allows.

The shared transitions read one answer per statement; over a network each read is a
round trip. Here the common cases are single statements whose answers arrive together:

- ``add`` of a plain job (no custom id, deduplication, delay or priority): one statement
  (its id, order, the queue's pause flag, the row, its events and the notification),
  which needs no lock: on its own it is the whole transaction, one round trip.
- ``fetch``: one claim statement (``FOR UPDATE SKIP LOCKED``, several jobs at once), guarded
  so that it claims only when no pause, limit, global concurrency or due delayed job
  needs the shared path, sent with a status read in the same round trip; an idle
  worker's claim shares the queue's lock with other claimers and is read after its
  COMMIT (one round trip).
- on finish, releasing a job's deduplication key is a statement nobody waits for.

Anything else falls back to the shared code, which stays the reference behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..base import Lease, NewJob
from ..sqlite.schedulers import advance_fetched
from ..sqlite.store import JOB_COLUMNS, QueueStore

if TYPE_CHECKING:
    from .store import PgQueueStore

_J_COLUMNS = ", ".join("j." + c.strip() for c in JOB_COLUMNS.split(","))


def claim_sql(schema: str) -> str:
    """The guarded claim of up to N waiting jobs for several leases at once (the n-th job
    gets the n-th token, lock time and worker name); rows ``(n, *JOB_COLUMNS)``, their
    ``active`` events, and a notification (the last parameter: its payload) when it took
    any (:func:`fetch_shared` commits without a NOTIFY of its own). The rows it locked
    are updated by their ``ctid``: a join on the id let a plan cached while the table was
    small (a prepared statement's generic plan) scan every job of the queue per claim."""
    return (
        "WITH q AS (SELECT paused = 0 AND concurrency IS NULL AND rate_max IS NULL AND NOT "
        "EXISTS (SELECT 1 FROM jobs WHERE qid = ? AND state = 'delayed' AND score <= ?) AS fast "
        "FROM queues WHERE qid = ?), "
        "picked AS (SELECT j.ctid AS tid, j.id, j.score FROM jobs j, q WHERE q.fast AND "
        "j.qid = ? AND j.state = 'wait' ORDER BY j.score LIMIT ? FOR UPDATE OF j SKIP LOCKED), "
        "numbered AS (SELECT tid, id, row_number() OVER (ORDER BY score) AS n FROM picked), "
        "taken AS (UPDATE jobs j SET state = 'active', "
        f"score = nextval('\"{schema}\".job_seq'), lock_token = (?::text[])[p.n], "
        "lock_until = (?::bigint[])[p.n], processed_on = ?, "
        "pb = coalesce((?::text[])[p.n], j.pb), ats = j.ats + 1 FROM numbered p "
        f"WHERE j.ctid = p.tid AND j.qid = ? AND j.id = p.id RETURNING p.n, {_J_COLUMNS}), "
        "e AS (INSERT INTO events (qid, ms, name, fields) SELECT ?, ?, 'active', "
        "json_build_object('jobId', id, 'prev', 'waiting')::text FROM taken) "
        "SELECT taken.* FROM taken, LATERAL (SELECT pg_notify('dockyard', ?)) AS nt"
    )


_STATUS = (
    "SELECT paused, concurrency, rate_max, "
    "EXISTS (SELECT 1 FROM jobs WHERE qid = ? AND state = 'prioritized'), "
    "(SELECT min(score) FROM jobs WHERE qid = ? AND state = 'delayed') "
    "FROM queues WHERE qid = ?"
)

#: For an idle worker, in one read: (a job is ready, the earliest delayed score).
LOOK = (
    "SELECT paused = 0 AND EXISTS (SELECT 1 FROM jobs WHERE qid = ? AND state IN ('wait', "
    "'prioritized')), (SELECT min(score) FROM jobs WHERE qid = ? AND state = 'delayed') "
    "FROM queues WHERE qid = ?"
)

Taken = tuple[list[Any], int, int]


def fetch(s: PgQueueStore, now: int, lease: Lease, count: int) -> Taken:
    """moveToActive in one round trip when it can; see the module docstring."""
    return fetch_many(s, now, [(lease, count)])[0]


def fetch_many(s: PgQueueStore, now: int, wants: list[tuple[Lease, int]]) -> list[Taken]:
    """Fetch for several leases at once, in the caller's transaction: one claim
    statement for all of them."""
    if any(lease.limit_max is not None or count <= 0 for lease, count in wants):
        return [QueueStore.fetch(s, now, lease, count) for lease, count in wants]
    taken, status = _read(*_send_claim(s, now, wants))
    if _guarded(taken, status, now):
        return [QueueStore.fetch(s, now, lease, count) for lease, count in wants]
    s.note_events(len(taken))
    advance_fetched(s, [row[1] for row in taken], now)
    return _share(wants, taken, status, lambda lease, n: QueueStore.fetch(s, now, lease, n))


def fetch_shared(s: PgQueueStore, now: int, lease: Lease, count: int) -> Taken | None:
    """An idle worker's moveToActive in one round trip: a transaction that shares the
    queue's lock with other claimers (``SKIP LOCKED`` keeps them apart) and so waits for
    a transition holding it alone, claims and reads the status, sent with its COMMIT and
    read after it (the claim's statement starts after the lock is taken, so it sees what
    that transition wrote: a pause, say). None when the shared path must run instead
    (nothing claimed and a pause, a limit or a due delayed job; a due trim of the
    events). A scheduler's iteration taken here gets its next one in a locked
    transaction right after (should the process die in between, the iteration stalls,
    is taken again and makes it then); prioritized jobs, which come after the waiting
    ones, are taken under the lock too."""
    if lease.limit_max is not None or count <= 0 or not s.events_fit(count):
        return None
    wants = [(lease, count)]
    with s.tx(shared=True):
        sent = _send_claim(s, now, wants)
    taken, status = _read(*sent)  # read after the COMMIT: one round trip
    if _guarded(taken, status, now):
        return None
    s.events_noted(len(taken))
    if any(str(row[1]).startswith("repeat:") for row in taken):
        s.write(advance_fetched, [row[1] for row in taken], now)

    def more(lease: Lease, n: int) -> Taken:
        return s.write(QueueStore.fetch, now, lease, n)

    return _share(wants, taken, status, more)[0]


def _send_claim(s: PgQueueStore, now: int, wants: list[tuple[Lease, int]]) -> tuple[Any, Any]:
    """Send the claim and the status read (unread: a pipeline sends them together)."""
    qid = s.qid
    claimed = s.conn.execute(s.claim_sql, _claim_params(s, now, wants))
    return claimed, s.conn.execute(_STATUS, (qid, qid, qid))


def _claim_params(s: PgQueueStore, now: int, wants: list[tuple[Lease, int]]) -> tuple[Any, ...]:
    """The parameters of :func:`claim_sql` (its own, not the status read's)."""
    qid = s.qid
    tokens: list[str | None] = []
    until: list[int] = []
    names: list[str | None] = []
    for lease, count in wants:
        tokens += [None if lease.token == "0" else lease.token] * count
        until += [now + lease.lock_ms] * count
        names += [lease.worker_name or None] * count
    return (qid, (now + 1) * 4096 - 1, qid, qid, len(tokens), tokens, until, now, names, qid,
            qid, now, s.wake_payload)  # fmt: skip


def _read(claimed: Any, status: Any) -> tuple[list[Any], tuple[Any, ...]]:
    """(the claimed rows in lease order, the status row)."""
    return sorted(claimed.fetchall()), status.fetchone()


def _guarded(taken: list[Any], status: tuple[Any, ...], now: int) -> bool:
    """The guard claimed nothing: the shared path applies limits and promotes."""
    paused, concurrency, rate_max, _, delayed = status
    return bool(
        paused
        or concurrency is not None
        or rate_max is not None
        or (not taken and delayed is not None and delayed <= (now + 1) * 4096 - 1)
    )


def _share(
    wants: list[tuple[Lease, int]],
    taken: list[Any],
    status: tuple[Any, ...],
    more: Callable[[Lease, int], Taken],
) -> list[Taken]:
    """The claimed rows dealt to the leases in order; a lease left short while
    prioritized jobs wait gets them from ``more`` (the shared path)."""
    prioritized, delayed = status[3], status[4]
    out: list[Taken] = []
    first = 1
    for lease, count in wants:
        rows = [row[1:] for row in taken if first <= row[0] < first + count]
        first += count
        if len(rows) < count and prioritized:
            extra, ttl, due = more(lease, count - len(rows))
            if not rows:
                out.append((extra, ttl, due))
                continue
            rows += extra
        if not rows:
            out.append(([], 0, 0 if delayed is None else int(delayed) // 4096))
        else:
            out.append((rows, 0, 0))
    return out


def add_sql(schema: str, qid: int) -> str:
    """addJob of a plain job in one statement: its id, order and the pause flag, the row,
    its two events and the queue's notification (the last parameter: its payload);
    returns the id. Needs no lock, so it can run as a statement of its own."""
    return (
        f"WITH n AS (SELECT nextval('\"{schema}\".jid_{qid}')::text AS id, "
        f"nextval('\"{schema}\".job_seq') AS seq, paused FROM queues WHERE qid = ?), "
        "j AS (INSERT INTO jobs (qid, id, name, data, opts, timestamp, delay, priority, state, "
        "score) SELECT ?, n.id, ?, ?, ?, ?, 0, 0, CASE WHEN n.paused = 0 THEN 'wait' ELSE "
        "'paused' END, CASE WHEN ?::boolean THEN -n.seq ELSE n.seq END FROM n), "
        "e AS (INSERT INTO events (qid, ms, name, fields) SELECT ?, ?, v.name, v.fields FROM n, "
        "LATERAL (VALUES (1, 'added', json_build_object('jobId', n.id, 'name', ?::text)::text), "
        "(2, 'waiting', json_build_object('jobId', n.id)::text)) AS v(o, name, fields) "
        "ORDER BY v.o) SELECT n.id FROM n, LATERAL (SELECT pg_notify('dockyard', ?)) AS nt"
    )


def add_rows(s: PgQueueStore, job: NewJob, now: int) -> Any:
    """addJob: the rows holding the new id of a plain job (read after the commit: one
    round trip in all), else the id itself from the shared path."""
    if not _plain(job):
        return QueueStore.add(s, job, now)
    s.note_events(2)
    return _add_plain(s, job, now)


def _add_plain(s: PgQueueStore, job: NewJob, now: int) -> Any:
    return s.conn.execute(
        s.add_sql,
        (s.qid, s.qid, job.name, job.data, job.opts, job.timestamp, job.lifo, s.qid, now,
         job.name, s.wake_payload),
    )  # fmt: skip


def add_unlocked(s: PgQueueStore, job: NewJob, now: int) -> str | None:
    """addJob of a plain job as one statement outside any transaction of ours (no BEGIN,
    lock or COMMIT: one round trip, as the add in a caller's transaction, which takes no
    lock either); None when the job or a due trim of the events needs the locked path."""
    if not _plain(job) or not s.events_fit(2):
        return None
    return str(_add_plain(s, job, now).fetchone()[0])


def add(s: PgQueueStore, job: NewJob, now: int) -> str:
    """addJob (see :func:`add_rows`), its id."""
    found = add_rows(s, job, now)
    return found if isinstance(found, str) else str(found.fetchone()[0])


def _plain(job: NewJob) -> bool:
    """A job the one-statement add takes: no custom id, deduplication, delay or priority,
    and a name that needs no encoding (its event is built in SQL)."""
    return not (
        job.job_id
        or job.dedup is not None
        or job.delay > 0
        or job.priority > 0
        or "\x00" in job.name
        or job.name[:1] == "\x01"
    )


def add_many(s: PgQueueStore, jobs: list[NewJob], now: int) -> list[str]:
    """addBulk: plain jobs in three statements whatever their number (one read: their
    ids, order and the pause flag); a bulk with any other job goes one by one."""
    if len(jobs) < 2 or not all(_plain(job) for job in jobs):
        return [s.add(job, now) for job in jobs]
    schema, qid = s.pg.schema, s.qid
    numbers = s.conn.execute(
        f"SELECT nextval('\"{schema}\".jid_{qid}'), nextval('\"{schema}\".job_seq'), "
        "(SELECT paused FROM queues WHERE qid = ?) FROM generate_series(1, ?)",
        (qid, len(jobs)),
    ).fetchall()
    ids = sorted(int(r[0]) for r in numbers)
    seqs = sorted(int(r[1]) for r in numbers)
    state = "paused" if numbers[0][2] else "wait"
    id_texts = [str(i) for i in ids]
    s.conn.execute(
        "INSERT INTO jobs (qid, id, name, data, opts, timestamp, delay, priority, state, score) "
        "SELECT ?, id, name, data, opts, ts, 0, 0, ?, score FROM unnest(?::text[], ?::text[], "
        "?::text[], ?::text[], ?::bigint[], ?::bigint[]) AS t(id, name, data, opts, ts, score)",
        (
            qid, state, id_texts, [j.name for j in jobs], [j.data for j in jobs],
            [j.opts for j in jobs], [j.timestamp for j in jobs],
            [-q if j.lifo else q for j, q in zip(jobs, seqs, strict=True)],
        ),
    )  # fmt: skip
    # Their events are built in SQL (as add_sql's): no JSON made or sent per job.
    s.conn.execute(
        "INSERT INTO events (qid, ms, name, fields) SELECT ?, ?, v.event, v.fields FROM "
        "unnest(?::text[], ?::text[]) WITH ORDINALITY AS t(id, job_name, o), LATERAL (VALUES "
        "(1, 'added', json_build_object('jobId', t.id, 'name', t.job_name)::text), "
        "(2, 'waiting', json_build_object('jobId', t.id)::text)) AS v(k, event, fields) "
        "ORDER BY t.o, v.k",
        (qid, now, id_texts, [j.name for j in jobs]),
    )
    s.note_events(2 * len(jobs))
    return id_texts


def extend_locks(s: PgQueueStore, locks: dict[str, str], lock_ms: int, now: int) -> list[str]:
    """Renew a worker's locks in one statement; the ids whose lock was lost."""
    if not locks:
        return []
    ids = list(locks)
    kept = s.conn.execute(
        "UPDATE jobs j SET lock_until = ?, stalled = 0 FROM unnest(?::text[], ?::text[]) AS "
        "v(id, token) WHERE j.qid = ? AND j.id = ANY(?::text[]) AND j.id = v.id AND "
        "j.lock_token = v.token AND j.lock_until > ? RETURNING j.id",
        (now + lock_ms, ids, [locks[i] for i in ids], s.qid, ids, now),
    ).fetchall()
    renewed = {row[0] for row in kept}
    return [job_id for job_id in ids if job_id not in renewed]


def release_dedup_if_any(s: PgQueueStore, job_id: str) -> None:
    """On finish: drop the job's untimed deduplication key, without waiting for a reply."""
    s.conn.execute(
        "DELETE FROM dedup WHERE qid = ? AND job_id = ? AND expires IS NULL AND id = "
        "(SELECT deid FROM jobs WHERE qid = ? AND id = ?)",
        (s.qid, job_id, s.qid, job_id),
    )
