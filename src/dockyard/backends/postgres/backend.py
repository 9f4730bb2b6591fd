"""PostgresBackend: the Backend protocol on a PostgreSQL database
(``postgresql://user:password@host:5432/db?schema=dockyard``).

The SQLite backend's code with a PostgreSQL connection under it (see dialect.py): each
instance owns one psycopg connection used from one thread of its own, every transition is
one transaction under the schema's advisory lock, and idle workers wake on LISTEN/NOTIFY
(notify.py). ``add``/``add_bulk`` can also write in a caller's own transaction
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
from psycopg import pq

from ...errors import (
    BackendAuthError,
    BackendError,
    BackendFullError,
    BackendPermissionError,
    BackendRefusedError,
    BackendUnavailableError,
    DockyardError,
    InvalidJobError,
    InvalidOptionError,
)
from ..base import Fetched, Finish, Lease, NewJob
from ..flowparts import refusal as flow_refusal
from ..redis.keys import validate_queue_name
from ..sqlite import admin
from ..sqlite.backend import SqliteBackend
from ..sqlite.store import QueueStore
from . import hotpath
from .dialect import PgConn, Rows
from .finishing import FastFinish, run_batch
from .notify import Notifier
from .schema import lock_key, migrate
from .store import PgQueueStore

SCHEMES = ("postgresql", "postgres")
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,39}")
#: SQLSTATEs of refusals that retrying cannot fix, and what to change.
_REFUSALS = {
    "28P01": "the user or password is wrong",
    "28000": "the server refused this user (pg_hba.conf has no entry that lets it in)",
    "3D000": "the database does not exist; create it (createdb) or fix the URL's path",
    "42501": "the user lacks a privilege dockyard needs (CREATE on the database or schema)",
}


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


def refusal(exc: psycopg.Error, where: str) -> BackendRefusedError | None:
    """The typed error of a refusal that retrying cannot fix, or None."""
    state = exc.sqlstate
    text = str(exc).strip()
    if state is None:  # a refusal during the login carries no SQLSTATE in some versions
        if "password authentication failed" in text or ("password" in text and "supplied" in text):
            state = "28P01"
        elif "no pg_hba.conf entry" in text:
            state = "28000"
        elif re.search(r'database ".*" does not exist', text):
            state = "3D000"
    if state not in _REFUSALS:
        return None
    cls = {"28P01": BackendAuthError, "28000": BackendAuthError}.get(
        state, BackendPermissionError if state == "42501" else BackendRefusedError
    )
    return cls(f"{where} refused dockyard: {_REFUSALS[state]} ({text})")


def _fetch(s: QueueStore, now: int, lease: Lease, count: int) -> Any:
    """The store's own fetch (PostgreSQL's claim), not QueueStore's."""
    return s.fetch(now, lease, count)


def _extend(s: QueueStore, locks: dict[str, str], lock_ms: int, now: int) -> Any:
    """The store's own lock renewal (one statement on PostgreSQL)."""
    return s.extend_locks(locks, lock_ms, now)


def _nul_refused() -> InvalidJobError:
    return InvalidJobError(
        "PostgreSQL refused text holding a NUL character ('\\x00'); remove it. Nothing was written."
    )


class PostgresBackend(SqliteBackend):
    """One queue in a PostgreSQL schema; see the module docstring."""

    kind = "postgres"
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
        self._notifier = Notifier(self.conninfo, self.schema)  # type: ignore[assignment]

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
                with store.tx():
                    out = fn(store, *args)
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
            return _nul_refused()
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
        (or one of ours when it is in autocommit mode with none open): rolled back, the
        jobs never existed; committed, workers are notified then."""
        if not isinstance(connection, psycopg.Connection | psycopg.AsyncConnection):
            raise InvalidOptionError(
                "connection= takes a psycopg (3) Connection or AsyncConnection, got "
                f"{type(connection).__name__}"
            )
        await self._run(lambda s: None, write=False)  # the schema, queue and id sequence
        loop = asyncio.get_running_loop()
        is_async = isinstance(connection, psycopg.AsyncConnection)
        now = int(time.time() * 1000)
        own = (
            connection.autocommit
            and connection.info.transaction_status == pq.TransactionStatus.IDLE
        )

        def run() -> list[str]:
            pg = PgConn(connection, self.schema, {}, loop if is_async else None, caller_tx=True)
            pg.run_plain("BEGIN" if own else "SAVEPOINT dockyard_add")
            try:
                store = PgQueueStore.on(pg, self.prefix, self.queue)
                ids = [store.add(job, now) for job in jobs]
                store.notify_in_tx()
            except BaseException:
                pg.run_plain(
                    "ROLLBACK"
                    if own
                    else "ROLLBACK TO SAVEPOINT dockyard_add; RELEASE SAVEPOINT dockyard_add"
                )
                raise
            pg.run_plain("COMMIT" if own else "RELEASE SAVEPOINT dockyard_add")
            return ids

        try:
            return await asyncio.to_thread(run)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
                raise _nul_refused() from None
            refused = refusal(exc, self._where)
            raise refused or BackendError(
                f"adding in the caller's transaction failed: {str(exc).strip()}"
            ) from None

    async def extend_locks(self, locks: Mapping[str, str], lock_ms: int) -> list[str]:
        lost: list[str] = await self._run(_extend, dict(locks), lock_ms, int(time.time() * 1000))
        return lost

    async def add(self, job: NewJob) -> str:
        found = await self._run(hotpath.add_rows, job, int(time.time() * 1000))
        return found if isinstance(found, str) else str(found[0][0])

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
        rows, ttl, due = await self._run(_fetch, int(time.time() * 1000), lease, count)
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
                "SELECT application_name, client_addr::text, pid, backend_start::text "
                "FROM pg_stat_activity WHERE starts_with(application_name, ?) AND datname = "
                "current_database()",
                (self._worker_tag,),
            ).fetchall()
            found = []
            for app, addr, pid, started in rows:
                name = str(app)[len(self._worker_tag) :]
                found.append({"name": name, "worker_name": name, "addr": addr or "local",
                              "id": str(pid), "started": started or ""})  # fmt: skip
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
