"""PostgresBackend: the Backend protocol on a PostgreSQL database
(``postgresql://user:password@host:5432/db?schema=dockyard``).

The SQLite backend's code with a PostgreSQL connection under it (see dialect.py): each
instance owns one psycopg connection used from one thread of its own, every transition is
one transaction under its queue's advisory lock (store.py), and idle workers wake on
LISTEN/NOTIFY (notify.py). ``add``/``add_bulk`` can also write in a caller's own transaction
(:meth:`add_in_transaction`).
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from ...errors import (
    BackendError,
    BackendFullError,
    BackendUnavailableError,
    DockyardError,
    InvalidOptionError,
)
from ..base import Fetched, Finish, Lease, NewJob
from ..flowparts import refusal as flow_refusal
from ..flowstore import FlowNode
from ..redis.keys import validate_queue_name
from ..sqlite import admin
from ..sqlite.backend import SqliteBackend
from ..sqlite.store import QueueStore
from . import caller, hotpath
from .dialect import PgConn, Rows
from .failures import nul_refused, refusal
from .finishing import FastFinish, run_batch
from .notify import Notifier
from .schema import lock_key, migrate
from .store import PgQueueStore

SCHEMES = ("postgresql", "postgres")
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,39}")


def parse_url(url: str) -> tuple[str, str]:
    """``(conninfo for psycopg, schema)`` of a ``postgresql://`` URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidOptionError(f"not a postgresql:// URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = "dockyard"
    rest: list[tuple[str, str]] = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if not _SCHEMA_RE.fullmatch(schema):
        raise InvalidOptionError(
            f"schema must be a lower-case identifier of at most 40 characters (letters, digits, "
            f"_), got {schema!r} in the URL"
        )
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    return conninfo, schema


def _where(conninfo: str) -> str:
    parts = urlsplit(conninfo)
    host = parts.hostname or "localhost"
    return f"PostgreSQL at {host}:{parts.port or 5432}{parts.path or ''}"


def _fetch(s: QueueStore, now: int, lease: Lease, count: int) -> Any:
    """The store's own fetch (PostgreSQL's claim), not QueueStore's."""
    return s.fetch(now, lease, count)


def _fetch_shared(s: QueueStore, now: int, lease: Lease, count: int) -> Any:
    """An idle worker's fetch: a claim sharing the queue's lock when it can, else one
    under the lock (the shared path)."""
    assert isinstance(s, PgQueueStore)
    found = hotpath.fetch_shared(s, now, lease, count)
    if found is not None:
        return found
    return s.write(_fetch, now, lease, count)


def _extend(s: QueueStore, locks: dict[str, str], lock_ms: int, now: int) -> Any:
    """The store's own lock renewal (one statement on PostgreSQL)."""
    return s.extend_locks(locks, lock_ms, now)


class PostgresBackend(SqliteBackend):
    """One queue in a PostgreSQL schema; see the module docstring."""

    kind = "postgres"
    _CLAIM_ON_NOTICE = True  # notices name the queue written (notify.py)
    # An event is shown once every writing transaction that began before it has ended,
    # so a reader resuming by id never skips one that committed late (an add in a
    # caller's transaction, say); or at the latest 10 s after it was written, so that a
    # transaction left open elsewhere holds events back no longer than that.
    _VISIBLE = (
        " AND (tx < pg_snapshot_xmin(pg_current_snapshot()) OR ms < "
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 10000)"
    )
    _NEWEST_EVENT_SQL = "SELECT max(id) FROM events WHERE qid = ?" + _VISIBLE
    _EVENTS_SQL = (
        "SELECT id, ms, name, fields FROM events WHERE qid = ? AND id > ?"
        + _VISIBLE
        + " ORDER BY id LIMIT ?"
    )

    def __init__(
        self, url: str, queue: str, *, prefix: str = "bull", retry_for: float | None = 20.0
    ) -> None:
        validate_queue_name(queue, prefix)
        self.conninfo, self.schema = parse_url(url)
        self._retry_for = retry_for
        self._where = _where(self.conninfo)
        self._sql_cache: dict[str, str] = {}
        self._raw: psycopg.Connection[Any] | None = None
        #: The worker this backend serves, shown as the connection's application_name.
        self._worker_name: str | None = None
        self._named: str | None = None
        super().__init__("sqlite:///unused", queue, prefix=prefix)
        self._url = url
        self.path = self._where
        self._notifier: Notifier = Notifier(self.conninfo, self.schema)  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<PostgresBackend {self._where} {self.schema} {self.prefix}:{self.queue}>"

    def reopen(self) -> PostgresBackend:
        return PostgresBackend(self._url, self.queue, prefix=self.prefix, retry_for=self._retry_for)

    def sibling(self, queue: str) -> PostgresBackend:
        return PostgresBackend(self._url, queue, prefix=self.prefix, retry_for=self._retry_for)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._notifier.wake_all()
        raw = self._raw
        if raw is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, raw.close)
        self._pool.shutdown(wait=False)

    # -- the connection, on the backend's thread -------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        deadline = None if self._retry_for is None else time.monotonic() + self._retry_for
        pause = 0.05
        while True:
            try:
                return psycopg.connect(
                    self.conninfo,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=self._app_name(None),
                )
            except psycopg.OperationalError as exc:
                refused = refusal(exc, self._where)
                if refused is not None:
                    raise refused from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise BackendUnavailableError(
                        f"cannot reach {self._where} (tried for {self._retry_for} s: "
                        f"{str(exc).strip()}); check that the server runs and the URL"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def _open(self) -> QueueStore:
        raw = self._raw = self._connect()
        try:
            migrate(raw, self.schema)
            pg = PgConn(raw, self.schema, self._sql_cache)
            pg.run_plain(f"BEGIN; SELECT pg_advisory_xact_lock({lock_key(self.schema)})")
            try:
                store = PgQueueStore.on(pg, self.prefix, self.queue)
            except BaseException:
                pg.run_plain("ROLLBACK")
                raise
            pg.run_plain("COMMIT")
            self._notifier.set_queue(store.qid)
            return store
        except BaseException:
            self._raw = None
            raw.close()
            raise

    def _in_thread(self, fn: Callable[..., Any], write: bool, args: tuple[Any, ...]) -> Any:
        try:
            store = self._store
            if store is None:
                store = self._store = self._open()
                self._named = None
            if self._worker_name != self._named and self._raw is not None:
                self._raw.execute(
                    "SELECT set_config('application_name', %s, false)",
                    (self._app_name(self._worker_name),),
                )
                self._named = self._worker_name
            if write:
                assert isinstance(store, PgQueueStore)
                out = store.write(fn, *args)
                # A result read only now: its statement's reply came with the COMMIT's.
                return out.fetchall() if isinstance(out, Rows) else out
            return fn(store, *args)
        except psycopg.Error as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: psycopg.Error) -> DockyardError:
        refused = refusal(exc, self._where)
        if refused is not None:
            return refused
        if isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
            return nul_refused()
        raw = self._raw
        if isinstance(exc, psycopg.OperationalError) or raw is None or raw.closed:
            self._store = None  # reconnect at the next call
            self._raw = None
            if raw is not None:
                raw.close()
            return BackendUnavailableError(
                f"the connection to {self._where} failed ({str(exc).strip()}); dockyard "
                "reconnects at the next call"
            )
        if exc.sqlstate in ("53100", "53200"):
            return BackendFullError(f"{self._where} is out of space or memory: {exc}")
        return BackendError(f"{self._where} refused a statement: {str(exc).strip()}")

    # -- transactional enqueue --------------------------------------------------------------

    async def add_in_transaction(self, connection: Any, jobs: Sequence[NewJob]) -> list[str]:
        """Add jobs with the caller's psycopg connection, inside their open transaction
        (caller.py)."""
        return await caller.add_jobs(self, connection, jobs)

    async def add_flow_in_transaction(
        self, connection: Any, nodes: Sequence[FlowNode]
    ) -> list[str]:
        """Add flows (whole new trees) inside the caller's open transaction (caller.py)."""
        return await caller.add_flow(self, connection, nodes)

    async def extend_locks(self, locks: Mapping[str, str], lock_ms: int) -> list[str]:
        lost: list[str] = await self._run(_extend, dict(locks), lock_ms, int(time.time() * 1000))
        return lost

    async def add(self, job: NewJob) -> str:
        found: str = await self._run(self._add_one, job, int(time.time() * 1000), write=False)
        return found

    def _add_one(self, s: QueueStore, job: NewJob, now: int) -> str:
        """One statement when it can (hotpath.add_unlocked), else a locked transaction."""
        assert isinstance(s, PgQueueStore)
        found = hotpath.add_unlocked(s, job, now)
        if found is not None:
            return found
        out = s.write(hotpath.add_rows, job, now)
        return out if isinstance(out, str) else str(out.fetchall()[0][0])

    async def add_bulk(self, jobs: Sequence[NewJob]) -> list[str]:
        def add_all(s: QueueStore, now: int) -> list[str]:
            assert isinstance(s, PgQueueStore)
            return hotpath.add_many(s, list(jobs), now)

        ids: list[str] = await self._run(add_all, int(time.time() * 1000))
        return ids

    # -- finishing: grouped statements -----------------------------------------------------

    async def finish(
        self, result: Finish, next_lease: Lease | None, count: int = 1
    ) -> Fetched | None:
        if result.outcome != "completed" or self._closed:
            return await super().finish(result, next_lease, count)

        def slow(s: QueueStore, now: int) -> tuple[int, Any]:
            return self._finish_in_store(s, now, result, next_lease, count)

        item = FastFinish(result, next_lease, count, slow)
        code, fetched = await self._run_batched(item, int(time.time() * 1000))
        if code < 0:
            raise flow_refusal(code, result.job_id, "move to completed", fetched or 0)
        if fetched is None or next_lease is None:
            return None
        rows, ttl, due = fetched
        return self._fetched(rows, ttl, due, next_lease.token)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._batch = self._batch, []
        done = loop.run_in_executor(self._pool, self._in_thread, run_batch, True, (batch,))

        def settle(outcome: asyncio.Future[list[Any]]) -> None:
            error = outcome.exception()
            results = [error] * len(batch) if error is not None else outcome.result()
            for (_, _, future), value in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(value, BaseException):
                    future.set_exception(value)
                else:
                    future.set_result(value)

        done.add_done_callback(settle)

    # -- what differs from SQLite --------------------------------------------------------------

    async def obliterate(self, force: bool) -> int:
        def run(s: QueueStore) -> int:
            code = admin.obliterate(s, force)
            if code == 0 and isinstance(s, PgQueueStore):
                s.reset_counter()
            return code

        code: int = await self._run(run)
        return code

    def _app_name(self, worker_name: str | None) -> str:
        """``dw:<schema and queue hash>:<worker name>`` for workers (get_workers finds
        them in pg_stat_activity), else ``dockyard:<schema>:<queue>``."""
        if worker_name is None:
            return f"dockyard:{self.schema}:{self.queue}"[:63]
        return f"{self._worker_tag}{worker_name}"[:63]

    @property
    def _worker_tag(self) -> str:
        return f"dw:{zlib.crc32(f'{self.schema}:{self.prefix}:{self.queue}'.encode()):08x}:"

    async def fetch(self, lease: Lease, count: int) -> Fetched:
        if lease.worker_name:
            self._worker_name = lease.worker_name
        rows, ttl, due = await self._run(
            _fetch_shared, int(time.time() * 1000), lease, count, write=False
        )
        return self._fetched(rows, ttl, due, lease.token)

    async def wait_for_work(self, timeout: float, worker_name: str | None) -> float | None:
        if worker_name:
            self._worker_name = worker_name
        return await super().wait_for_work(timeout, worker_name)

    @staticmethod
    def _look(s: QueueStore) -> tuple[bool, int]:
        row = s.conn.execute(hotpath.LOOK, (s.qid, s.qid, s.qid)).fetchone()
        return bool(row[0]), 0 if row[1] is None else int(row[1]) // 4096

    async def get_workers(self) -> list[dict[str, str]]:
        def read(s: QueueStore) -> list[dict[str, str]]:
            rows = s.conn.execute(
                "SELECT application_name, host(client_addr), pid, backend_start::text, "
                "floor(extract(epoch FROM now() - backend_start))::bigint, "
                "floor(extract(epoch FROM now() - state_change))::bigint "
                "FROM pg_stat_activity WHERE starts_with(application_name, ?) AND datname = "
                "current_database()",
                (self._worker_tag,),
            ).fetchall()
            found = []
            # The field names of Redis's CLIENT LIST (age, idle: seconds), so that every
            # store's workers read alike.
            for app, addr, pid, started, age, idle in rows:
                name = str(app)[len(self._worker_tag) :]
                found.append({"name": name, "worker_name": name, "addr": addr or "local",
                              "id": str(pid), "started": started or "",
                              "age": "" if age is None else str(max(0, int(age))),
                              "idle": "" if idle is None else str(max(0, int(idle)))})  # fmt: skip
            return found

        workers: list[dict[str, str]] = await self._run(read, write=False)
        return workers

    async def list_queue_names(self) -> list[str]:
        def names(s: QueueStore) -> list[str]:
            rows = s.conn.execute(
                "SELECT name FROM queues q WHERE prefix = ? AND (EXISTS (SELECT 1 FROM jobs j "
                "WHERE j.qid = q.qid) OR EXISTS (SELECT 1 FROM events e WHERE e.qid = q.qid)) "
                "ORDER BY name",
                (self.prefix,),
            ).fetchall()
            return [r[0] for r in rows]

        found: list[str] = await self._run(names, write=False)
        return found
