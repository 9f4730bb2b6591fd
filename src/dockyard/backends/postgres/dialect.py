"""The SQL store's statements on PostgreSQL: a connection that speaks SQLite's dialect.

The transitions in :mod:`..sqlite` (store, outcomes, admin, flows, schedulers, extras) are
written once, with ``?`` parameters and the few SQLite idioms below; :class:`PgConn` runs
them on a psycopg connection, translating each statement once (then cached):

- ``?`` becomes ``%s`` (a literal ``%`` is doubled);
- the store's tables are qualified with the PostgreSQL schema (``"dockyard".jobs``), so
  no ``search_path`` is set on a connection, not even a caller's own;
- ``INSERT OR IGNORE`` becomes ``ON CONFLICT DO NOTHING`` and ``INSERT OR REPLACE``
  ``ON CONFLICT (primary key) DO UPDATE`` of the columns given;
- ``LIMIT -1`` (SQLite's "no limit") becomes ``LIMIT ALL``, and ``LIMIT ?`` accepts -1;
- an array parameter (``?::text[]``, PostgreSQL's own statements) is sent in binary: the
  server parses a text array of 1,000 strings about four times slower, and the hot path
  (bulk add, batched finish, claim) sends several per statement.

Text holding NUL (which PostgreSQL's text cannot) is stored as ``\x01`` + its JSON
(as is text starting with ``\x01``, so the encoding is reversible and deterministic):
parameters are encoded and rows decoded here, so a job name or log line with NUL reads
back as it was written, and an id with NUL matches itself.

The connection may be synchronous (our own, in the backend's thread) or a caller's
``psycopg.AsyncConnection``, driven from that thread on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

#: The store's tables and their primary keys (for INSERT OR REPLACE).
TABLES: dict[str, tuple[str, ...]] = {
    "queues": ("qid",),
    "jobs": ("qid", "id"),
    "logs": ("seq",),
    "events": (),  # no key since migration 3 (its id comes from a sequence)
    "dedup": ("qid", "id"),
    "metrics": ("qid", "kind"),
    "schedulers": ("qid", "sid"),
    "dependencies": ("parent_qid", "parent_id", "child_key"),
    "state_counts": (),  # no key: rows are appended and folded (schema.py, migration 2)
}
_TABLE_RE = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+(" + "|".join(TABLES) + r")\b")
_REPLACE_RE = re.compile(r"INSERT OR REPLACE INTO (\w+) \(([^)]*)\)", re.S)
_ARRAY_RE = re.compile(r"%s(::\w+\[\])")


def translate(sql: str, schema: str) -> str:
    """One statement of the shared SQL in PostgreSQL's dialect (see the module docstring)."""
    conflict = ""
    if sql.startswith("INSERT OR IGNORE INTO"):
        sql = "INSERT INTO" + sql[len("INSERT OR IGNORE INTO") :]
        conflict = " ON CONFLICT DO NOTHING"
    elif sql.startswith("INSERT OR REPLACE INTO"):
        found = _REPLACE_RE.match(sql)
        if found is None:
            raise ValueError(f"cannot translate {sql!r}")
        table, columns = found.group(1), [c.strip() for c in found.group(2).split(",")]
        key = TABLES[table]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
        sql = "INSERT INTO" + sql[len("INSERT OR REPLACE INTO") :]
        conflict = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
    sql = sql.replace("LIMIT -1", "LIMIT ALL").replace("LIMIT ?", "LIMIT nullif(?::bigint, -1)")
    sql = _TABLE_RE.sub(lambda m: f'{m.group(1)} "{schema}".{m.group(2)}', sql)
    sql = _ARRAY_RE.sub(r"%b\1", sql.replace("%", "%%").replace("?", "%s"))
    if conflict:
        sql = sql.rstrip() + conflict
    return sql


_MARK = "\x01"


def _needs(text: str) -> bool:
    return "\x00" in text or text[:1] == _MARK


def _encode(value: Any) -> Any:
    if isinstance(value, str):
        return _MARK + json.dumps(value) if _needs(value) else value
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def encode_params(params: Sequence[Any]) -> Sequence[Any]:
    """The parameters with NUL-holding text encoded (see the module docstring)."""
    for value in params:
        if (isinstance(value, str) and _needs(value)) or isinstance(value, list):
            return [_encode(v) for v in params]
    return params


def decode_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows with encoded text decoded (see the module docstring)."""
    for i, row in enumerate(rows):
        if any(isinstance(c, str) and c[:1] == _MARK for c in row):
            rows[i] = tuple(
                json.loads(c[1:]) if isinstance(c, str) and c[:1] == _MARK else c for c in row
            )
    return rows


def _has_rows(cur: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> bool:
    """The statement returns rows (a query, or RETURNING): what ``cur.description is not
    None`` says, without building a Column object per column at every statement."""
    result = cur.pgresult
    return result is not None and result.status == pq.ExecStatus.TUPLES_OK


class Rows:
    """What the shared code reads of a cursor: fetchone, fetchall, iteration, rowcount."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


class _LazyRows(Rows):
    """Rows of a statement queued in a pipeline: read (one round trip for everything
    queued so far) only when the caller looks at them, so statements whose result nobody
    reads (events, savepoints, most UPDATEs) cost no round trip of their own."""

    __slots__ = ("_cur", "_pipe")

    def __init__(self, cur: psycopg.Cursor[Any], pipe: psycopg.Pipeline) -> None:
        self._cur = cur
        self._pipe = pipe
        self._rows: list[tuple[Any, ...]] | None = None  # type: ignore[assignment]

    def _load(self) -> list[tuple[Any, ...]]:
        rows = self._rows
        if rows is None:
            cur = self._cur
            if cur.pgresult is None:
                self._pipe.sync()
            rows = self._rows = decode_rows(cur.fetchall()) if _has_rows(cur) else []
            self.rowcount = cur.rowcount
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._load()
        return rows[0] if rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._load()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._load())

    def __getattr__(self, name: str) -> Any:
        if name == "rowcount":
            self._load()
            return self.rowcount
        raise AttributeError(name)


class PgConn:
    """A DB-API-like face of one psycopg connection for the shared transitions."""

    def __init__(
        self,
        conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
        schema: str,
        cache: dict[str, str],
        loop: asyncio.AbstractEventLoop | None = None,
        caller_tx: bool = False,
    ) -> None:
        self.raw = conn
        #: A caller's connection: statements run in their transaction.
        self.caller_tx = caller_tx
        #: No server-side prepared statements on a caller's connection (a pooler may
        #: hand it to another session); psycopg's default (prepare when reused) on ours.
        self._prepare: bool | None = False if caller_tx else None
        self._pipe_cm: Any = None
        self._pipe: psycopg.Pipeline | None = None
        #: The queues whose locks the open write transaction holds (None outside one).
        self.locked: set[int] | None = None
        self.schema = schema
        self._cache = cache
        self._loop = loop

    def sql(self, text: str) -> str:
        found = self._cache.get(text)
        if found is None:
            found = self._cache[text] = translate(text, self.schema)
        return found

    def execute(self, text: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement (``?`` parameters) and read all its rows."""
        sql = self.sql(text) if params or "?" in text else self.sql(text).replace("%%", "%")
        params = encode_params(params)
        conn = self.raw
        if isinstance(conn, psycopg.AsyncConnection):
            return self._rows(_run_async(conn, sql, params, self._prepare))
        if self._pipe is not None:
            cur = conn.cursor(row_factory=tuple_row)
            cur.execute(sql, params or None, prepare=self._prepare)
            return _LazyRows(cur, self._pipe)
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql, params or None, prepare=self._prepare)
            rows = decode_rows(cur.fetchall()) if _has_rows(cur) else []
            return Rows(rows, cur.rowcount)

    def executemany(self, text: str, seq: Sequence[Sequence[Any]]) -> Rows:
        """Run one statement for each parameter row (pipelined by psycopg)."""
        seq = [encode_params(row) for row in seq]
        if not seq:
            return Rows([], 0)
        sql = self.sql(text)
        conn = self.raw
        if isinstance(conn, psycopg.AsyncConnection):
            return self._rows(_run_many_async(conn, sql, seq))
        if self._pipe is not None:
            cur = conn.cursor(row_factory=tuple_row)
            cur.executemany(sql, seq)
            return _LazyRows(cur, self._pipe)
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.executemany(sql, seq)
            return Rows([], cur.rowcount)

    def begin(self, *statements: str) -> None:
        """Open a transaction in pipeline mode (our own connection only): the statements
        and everything until :meth:`end` go out without waiting for each reply."""
        conn = self.raw
        assert isinstance(conn, psycopg.Connection)
        self._pipe_cm = conn.pipeline()
        self._pipe = self._pipe_cm.__enter__()
        for sql in ("BEGIN", *statements):
            conn.cursor().execute(sql.encode())

    def end(self, commit: bool, *statements: str) -> None:
        """Run the statements and COMMIT (one round trip for all that was queued), or
        ROLLBACK; leaves pipeline mode."""
        conn = self.raw
        assert isinstance(conn, psycopg.Connection)
        cm, self._pipe_cm, self._pipe = self._pipe_cm, None, None
        if commit:
            try:
                for sql in (*statements, "COMMIT"):
                    conn.cursor().execute(sql.encode())
                cm.__exit__(None, None, None)
            except BaseException:
                self._rollback()
                raise
            return
        with contextlib.suppress(psycopg.Error):
            cm.__exit__(None, None, None)
        self._rollback()

    def _rollback(self) -> None:
        """Out of a failed transaction (a statement of it failed, or the COMMIT did)."""
        conn = self.raw
        if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute(b"ROLLBACK")

    def run_plain(self, sql: str) -> None:
        """Run SQL text as it is (several statements allowed, no parameters)."""
        conn = self.raw
        if isinstance(conn, psycopg.AsyncConnection):
            self._await(conn.execute(sql.encode()))
            return
        conn.execute(sql.encode())

    def _rows(self, coro: Any) -> Rows:
        rows: Rows = self._await(coro)
        return rows

    def _await(self, coro: Any) -> Any:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("an async connection needs its event loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


async def _run_async(
    conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any], prepare: bool | None
) -> Rows:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(sql, params or None, prepare=prepare)
        rows = decode_rows(await cur.fetchall()) if _has_rows(cur) else []
        return Rows(rows, cur.rowcount)


async def _run_many_async(
    conn: psycopg.AsyncConnection[Any], sql: str, seq: Sequence[Sequence[Any]]
) -> Rows:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.executemany(sql, seq)
        return Rows([], cur.rowcount)
