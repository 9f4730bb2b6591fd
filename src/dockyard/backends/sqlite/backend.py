"""SqliteBackend: the Backend protocol on one SQLite file (``sqlite:///path/to/jobs.db``).

For one machine with no server to run. The file is in WAL mode; every transition is one
``BEGIN IMMEDIATE`` transaction, so worker processes sharing the file never take a job
twice; locks expire and the stalled check requeues the jobs of a process that died.
``synchronous=NORMAL`` (the default) survives any process crash; a power cut may lose the
last commits: add ``?synchronous=full`` to the URL to sync every commit to disk.

Each backend instance owns one connection, used from one thread of its own, so the event
loop never blocks on the file. Idle workers wait on :mod:`.notify`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ...errors import (
    BackendFullError,
    BackendUnavailableError,
    InvalidOptionError,
    JobNotFoundError,
)
from ...errors import error_for_code as _error
from ...job import Job
from ..base import Fetched, Finish, Lease, NewJob
from ..flowparts import refusal
from ..redis.keys import validate_queue_name
from .admin import SqliteAdmin
from .flows import SqliteFlows, pending_count
from .notify import notifier_for
from .schedulers import SqliteSchedulers
from .schema import migrate
from .store import QueueStore, parse_opts

_loads: Callable[[str], Any]
try:  # the ``fast`` extra
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

_STATE_NAMES = {"wait": "waiting", "paused": "waiting"}
_COUNT_STATES = {"waiting": ("wait",), "wait": ("wait",)}


def parse_url(url: str) -> tuple[str, str]:
    """``(file path, synchronous)`` of an ``sqlite:///relative`` or ``sqlite:////abs`` URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise InvalidOptionError(f"not an sqlite:// URL: {url!r}")
    if parts.netloc:
        raise InvalidOptionError(
            f"{url!r} names a host; an SQLite URL is sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
    if not path:
        raise InvalidOptionError(f"{url!r} names no file; use sqlite:///jobs.db")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"synchronous"})
    if unknown:
        raise InvalidOptionError(
            f"unknown option(s) {', '.join(unknown)} in {url!r}; sqlite:// takes "
            "?synchronous=normal|full"
        )
    sync = query.get("synchronous", ["normal"])[-1].lower()
    if sync not in ("normal", "full"):
        raise InvalidOptionError(f"synchronous must be 'normal' or 'full' in {url!r}")
    return os.path.abspath(path), sync


def _decode(text: str | None, default: Any = None) -> Any:
    if text is None:
        return default
    try:
        return _loads(text)
    except ValueError:
        return text


def _now() -> int:
    return int(time.time() * 1000)


def _run_all(
    store: QueueStore, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]
) -> list[Any]:
    """Run several transitions in the caller's transaction; a failing one gives its error
    to its own caller only (its statements are undone by a savepoint)."""
    results: list[Any] = []
    for fn, args, _ in batch:
        store.conn.execute("SAVEPOINT one")
        try:
            results.append(fn(store, *args))
        except Exception as exc:  # handed to that caller
            store.conn.execute("ROLLBACK TO one")
            results.append(exc)
        store.conn.execute("RELEASE one")
    return results


class SqliteBackend(SqliteAdmin):
    """One queue in an SQLite file; see the module docstring."""

    kind = "sqlite"
    #: Woken by a change notice, an idle worker goes to claim at once instead of looking
    #: first: right where notices name the queue (PostgreSQL), not where any write to the
    #: file wakes every queue's waiters (here).
    _CLAIM_ON_NOTICE = False
    #: The newest event's id, and a page of events after one (a store may add a condition:
    #: PostgreSQL holds an event back while a transaction that began before it is open).
    _NEWEST_EVENT_SQL = "SELECT max(id) FROM events WHERE qid = ?"
    _EVENTS_SQL = (
        "SELECT id, ms, name, fields FROM events WHERE qid = ? AND id > ? ORDER BY id LIMIT ?"
    )

    def __init__(self, url: str, queue: str, *, prefix: str = "bull") -> None:
        validate_queue_name(queue, prefix)
        self.queue = queue
        self.prefix = prefix
        self._url = url
        self.path, self._sync = parse_url(url)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dockyard-sqlite")
        self._store: QueueStore | None = None
        self._notifier = notifier_for(self.path)
        self._closed = False
        self._interrupted = False
        self._batch: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self.schedulers = SqliteSchedulers(self)
        #: Flows (parent/child jobs) of this queue's jobs: the FlowStore protocol.
        self.flows = SqliteFlows(self, _decode)

    def __repr__(self) -> str:
        return f"<SqliteBackend {self.path} {self.prefix}:{self.queue}>"

    def reopen(self) -> SqliteBackend:
        return SqliteBackend(self._url, self.queue, prefix=self.prefix)

    def sibling(self, queue: str) -> SqliteBackend:
        return SqliteBackend(self._url, queue, prefix=self.prefix)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._notifier.wake_all()
        store = self._store
        if store is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, store.conn.close)
        self._pool.shutdown(wait=False)

    # -- running on the backend's thread ------------------------------------------------

    def _open(self) -> QueueStore:
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync.upper()}")
            migrate(conn, self.path)
            return QueueStore(conn, self.prefix, self.queue)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailableError(
                f"cannot open the SQLite file {self.path}: {exc}; check the path and its "
                "permissions"
            ) from None

    def _in_thread(self, fn: Callable[..., Any], write: bool, args: tuple[Any, ...]) -> Any:
        store = self._store
        if store is None:
            store = self._store = self._open()
        try:
            if write:
                with store.tx():
                    return fn(store, *args)
            return fn(store, *args)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
                raise BackendFullError(
                    f"the disk of the SQLite file {self.path} is full ({exc}); nothing was "
                    "written: free space or remove finished jobs"
                ) from None
            raise BackendUnavailableError(
                f"the SQLite file {self.path} could not be used ({exc}); if it is locked, "
                "another process holds a long transaction"
            ) from None

    async def _run(self, fn: Callable[..., Any], *args: Any, write: bool = True) -> Any:
        if self._closed:
            raise BackendUnavailableError(
                f"this SQLite backend of queue {self.queue!r} was closed; open a new Queue or "
                "Worker to use the file again"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._in_thread, fn, write, args)

    async def _run_batched(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Like ``_run``, but calls made in the same loop turn (many slots finishing at
        once) share one transaction: one commit for all of them (group commit)."""
        if self._closed:
            return await self._run(fn, *args)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._batch.append((fn, args, future))
        if len(self._batch) == 1:
            loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._batch = self._batch, []
        done = loop.run_in_executor(self._pool, self._in_thread, _run_all, True, (batch,))

        def settle(outcome: asyncio.Future[list[Any]]) -> None:
            error = outcome.exception()
            results = [error] * len(batch) if error is not None else outcome.result()
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

        done.add_done_callback(settle)

    def _job(self, row: Sequence[Any], token: str | None = None) -> Job:
        (job_id, name, data, opts, ts, delay, prio, progress, atm, ats, stc, reason, stack,
         returned, processed, finished, pb, defa) = row  # fmt: skip
        traces = _decode(stack, []) if stack is not None else []
        options = parse_opts(opts)
        rjk = options.extra.get("repeatJobKey")
        return Job(
            id=job_id,
            name=name,
            data=_decode(data, {}),
            opts=options,
            queue_name=self.queue,
            timestamp=ts / 1000,
            delay=delay / 1000,
            priority=prio,
            progress=0 if progress is None else _decode(progress, 0),
            attempts_made=atm,
            attempts_started=ats,
            stalled_counter=stc,
            failed_reason=reason,
            stacktrace=[str(t) for t in traces] if isinstance(traces, list) else [],
            return_value=None if returned is None else _decode(returned),
            processed_on=None if processed is None else processed / 1000,
            finished_on=None if finished is None else finished / 1000,
            processed_by=pb,
            deferred_failure=defa,
            token=token,
            backend=self,
            repeat_job_key=rjk if isinstance(rjk, str) else None,
        )

    # -- producers --------------------------------------------------------------------

    async def add(self, job: NewJob) -> str:
        job_id: str = await self._run(QueueStore.add, job, _now())
        return job_id

    async def add_bulk(self, jobs: Sequence[NewJob]) -> list[str]:
        def add_all(s: QueueStore, now: int) -> list[str]:
            return [s.add(job, now) for job in jobs]

        ids: list[str] = await self._run(add_all, _now())
        return ids

    # -- reads ------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self._run(QueueStore.rows, [job_id], write=False)
        return self._job(rows[0]) if rows else None

    async def get_state(self, job_id: str) -> str:
        state = await self._run(QueueStore.job_state, job_id, write=False)
        return "unknown" if state is None else _STATE_NAMES.get(state, state)

    async def get_counts(self, states: Sequence[str]) -> dict[str, int]:
        for state in states:
            if state not in ("waiting", "wait", "paused", "active", "delayed", "prioritized",
                             "completed", "failed", "waiting-children"):  # fmt: skip
                raise ValueError(state)

        def count(s: QueueStore) -> dict[str, int]:
            by_state = s.state_totals()
            return {st: int(by_state.get("wait" if st == "waiting" else st, 0)) for st in states}

        counts: dict[str, int] = await self._run(count, write=False)
        return counts

    async def get_job_ids(self, state: str, start: int, end: int, asc: bool) -> list[str]:
        where = "wait" if state == "waiting" else state
        if where not in ("wait", "paused", "active", "delayed", "prioritized", "completed",
                         "failed", "waiting-children"):  # fmt: skip
            raise ValueError(state)

        def ids(s: QueueStore) -> list[str]:
            total = s.state_total(where)
            lo = start if start >= 0 else max(total + start, 0)
            hi = min(end if end >= 0 else total + end, total - 1)
            if lo > hi:
                return []
            # A page past the middle is read from the other end: the offset stays small.
            backwards = lo > total - 1 - hi
            order = "ASC" if asc != backwards else "DESC"
            offset = total - 1 - hi if backwards else lo
            found = [
                r[0]
                for r in s.conn.execute(
                    f"SELECT id FROM jobs WHERE qid = ? AND state = ? ORDER BY score {order}, "
                    f"id {order} LIMIT ? OFFSET ?",
                    (s.qid, where, hi - lo + 1, offset),
                )
            ]
            return found[::-1] if backwards else found

        found: list[str] = await self._run(ids, write=False)
        return found

    async def get_logs(self, job_id: str, start: int, end: int) -> list[str]:
        def lines(s: QueueStore) -> list[str]:
            rows = s.conn.execute(
                "SELECT line FROM logs WHERE qid = ? AND job_id = ? ORDER BY seq", (s.qid, job_id)
            ).fetchall()
            n = len(rows)
            lo = start if start >= 0 else max(n + start, 0)
            hi = min(end if end >= 0 else n + end, n - 1)
            return [r[0] for r in rows[lo : hi + 1]]

        found: list[str] = await self._run(lines, write=False)
        return found

    async def is_paused(self) -> bool:
        paused: bool = await self._run(QueueStore.paused, write=False)
        return paused

    # -- job updates ------------------------------------------------------------------

    async def update_progress(self, job_id: str, progress: str) -> None:
        def update(s: QueueStore, now: int) -> int:
            cur = s.conn.execute(
                "UPDATE jobs SET progress = ? WHERE qid = ? AND id = ?", (progress, s.qid, job_id)
            )
            if cur.rowcount == 0:
                return -1
            s.emit(now, "progress", {"jobId": job_id, "data": progress})
            return 0

        if await self._run(update, _now()) < 0:
            raise _error(-1, job_id, "update_progress")

    async def add_log(self, job_id: str, line: str, keep: int | None) -> int:
        def append(s: QueueStore) -> int:
            if s.job_state(job_id) is None:
                return -1
            s.conn.execute(
                "INSERT INTO logs (qid, job_id, line) VALUES (?, ?, ?)", (s.qid, job_id, line)
            )
            if keep is not None:
                s.conn.execute(
                    "DELETE FROM logs WHERE qid = ? AND job_id = ? AND seq NOT IN (SELECT seq "
                    "FROM logs WHERE qid = ? AND job_id = ? ORDER BY seq DESC LIMIT ?)",
                    (s.qid, job_id, s.qid, job_id, keep),
                )
            return int(
                s.conn.execute(
                    "SELECT count(*) FROM logs WHERE qid = ? AND job_id = ?", (s.qid, job_id)
                ).fetchone()[0]
            )

        count: int = await self._run(append)
        if count < 0:
            raise _error(count, job_id, "log")
        return count

    # -- admin ------------------------------------------------------------------------

    # -- workers ----------------------------------------------------------------------

    def _fetched(self, rows: list[Any], ttl: int, due: int, token: str) -> Fetched:
        return Fetched([self._job(row, token) for row in rows], ttl, due)

    async def fetch(self, lease: Lease, count: int) -> Fetched:
        rows, ttl, due = await self._run(QueueStore.fetch, _now(), lease, count)
        return self._fetched(rows, ttl, due, lease.token)

    @staticmethod
    def _look(s: QueueStore) -> tuple[bool, int]:
        """(a job is ready, when the next delayed one is due) for an idle worker."""
        return s.has_ready(), s.next_due()

    async def wait_for_work(self, timeout: float, worker_name: str | None) -> float | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        while True:
            if self._interrupted or self._closed:
                self._interrupted = False
                return None
            seen = self._notifier.version()
            ready, due = await self._run(self._look, write=False)
            if ready:
                return None
            now = _now()
            if due and due <= now:
                return None
            wait = deadline - loop.time()
            if due:
                wait = min(wait, (due - now) / 1000)
            if wait <= 0:
                return None
            await self._notifier.wait(seen, wait)
            if loop.time() >= deadline:
                return None
            if self._CLAIM_ON_NOTICE and self._notifier.version() != seen:
                return None

    async def interrupt_wait(self) -> None:
        self._interrupted = True
        self._notifier.wake_all(asyncio.get_running_loop())

    @staticmethod
    def _finish_in_store(
        s: QueueStore, now: int, result: Finish, next_lease: Lease | None, count: int
    ) -> tuple[int, Any]:
        """One finish (and fetch of the next jobs) in the caller's transaction: (code, the
        fetch's rows or, for -4, the number of pending children)."""
        outcome = result.outcome
        if outcome in ("completed", "failed"):
            code = s.finish(
                result.job_id,
                result.token,
                now,
                outcome == "completed",
                result.value,
                result.stacktrace,
                result.keep_count,
                result.keep_age,
                result.attempts,
                result.metrics,
            )
        elif outcome in ("retry", "release"):
            release = outcome == "release"
            code = s.retry(
                result.job_id, result.token, now, True if release else result.lifo,
                result.value, result.stacktrace, not release,
            )  # fmt: skip
        else:
            code = s.move_to_delayed(
                result.job_id, result.token, now, result.delay_ms, result.value,
                result.stacktrace, result.count_attempt,
            )  # fmt: skip
        fetched = None
        if code == -4:  # the refusal says how many children are pending
            return code, pending_count(s, result.job_id)
        if code == 0 and next_lease is not None:
            fetched = s.fetch(now, next_lease, count)
        if code == 0 and outcome in ("completed", "failed") and not (fetched and fetched[0]):
            s.drained(now)
        return code, fetched

    async def finish(
        self, result: Finish, next_lease: Lease | None, count: int = 1
    ) -> Fetched | None:
        outcome = result.outcome
        if outcome not in ("completed", "failed", "retry", "delayed", "release"):
            raise ValueError(f"unknown outcome {outcome!r}")

        def run(s: QueueStore, now: int) -> tuple[int, Any]:
            return self._finish_in_store(s, now, result, next_lease, count)

        code, fetched = await self._run_batched(run, _now())
        if code < 0:
            raise refusal(code, result.job_id, f"move to {outcome}", fetched or 0)
        if fetched is None or next_lease is None:
            return None
        rows, ttl, due = fetched
        return self._fetched(rows, ttl, due, next_lease.token)

    async def extend_locks(self, locks: Mapping[str, str], lock_ms: int) -> list[str]:
        lost: list[str] = await self._run(QueueStore.extend_locks, dict(locks), lock_ms, _now())
        return lost

    async def locked_with(self, tokens: Collection[str]) -> dict[str, str]:
        wanted = sorted(set(tokens))
        if not wanted:
            return {}

        def find(s: QueueStore) -> dict[str, str]:
            marks = ", ".join("?" * len(wanted))
            rows = s.conn.execute(
                f"SELECT id, lock_token FROM jobs WHERE qid = ? AND state = 'active' "
                f"AND lock_token IN ({marks})",
                (s.qid, *wanted),
            ).fetchall()
            return {str(job_id): str(token) for job_id, token in rows}

        found: dict[str, str] = await self._run(find, write=False)
        return found

    async def check_stalled(self, max_stalled_count: int, interval_ms: int) -> list[str]:
        ids: list[str] = await self._run(
            QueueStore.check_stalled, max_stalled_count, _now(), interval_ms
        )
        return ids

    async def wait_finished(self, job_id: str, timeout: float | None) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def look(s: QueueStore) -> tuple[str, str | None] | None:
            row = s.conn.execute(
                "SELECT state, returnvalue, failed_reason FROM jobs WHERE qid = ? AND id = ?",
                (s.qid, job_id),
            ).fetchone()
            if row is None:
                return s.outcome_from_events(job_id) or ("missing", None)
            if row[0] == "completed":
                return "completed", row[1] or "null"
            if row[0] == "failed":
                return "failed", row[2] or ""
            return None

        while True:
            seen = self._notifier.version()
            found = await self._run(look, write=False)
            if found is not None:
                state, value = found
                if state == "missing":
                    raise JobNotFoundError(
                        f"job {job_id} does not exist in queue {self.queue!r} (it may have "
                        "been removed); there is nothing to wait for"
                    )
                return (state, _decode(value)) if state == "completed" else (state, value)
            wait = 5.0 if deadline is None else deadline - loop.time()
            if wait <= 0:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            await self._notifier.wait(seen, min(wait, 5.0))

    # -- events -----------------------------------------------------------------------

    async def read_events(
        self, last_id: str = "$", count: int = 1000, timeout: float | None = 0.0
    ) -> list[tuple[str, dict[str, str]]]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def newest(s: QueueStore) -> int:
            row = s.conn.execute(self._NEWEST_EVENT_SQL, (s.qid,)).fetchone()
            return int(row[0] or 0)

        if last_id == "$":
            after = await self._run(newest, write=False)
        else:
            ms, _, seq = last_id.partition("-")
            try:
                int(ms)
                after = int(seq) if seq else 0
            except ValueError:
                raise InvalidOptionError(
                    f"an event id is 'ms-seq', '0' or '$', got {last_id!r}"
                ) from None

        def read(s: QueueStore) -> list[tuple[str, dict[str, str]]]:
            rows = s.conn.execute(self._EVENTS_SQL, (s.qid, after, count)).fetchall()
            return [
                (f"{ms}-{eid}", {"event": name, **(json.loads(fields) if fields else {})})
                for eid, ms, name, fields in rows
            ]

        while True:
            seen = self._notifier.version()
            events: list[tuple[str, dict[str, str]]] = await self._run(read, write=False)
            if events:
                return events
            wait = 5.0 if deadline is None else deadline - loop.time()
            if wait <= 0 or self._closed:
                return []
            await self._notifier.wait(seen, min(wait, 5.0))
