"""The PostgreSQL schema: dockyard's tables in a schema of their own, versioned.

The tables have the SQLite store's shape (the transitions are shared, see dialect.py) with
PostgreSQL's types, plus what PostgreSQL needs: sequences instead of counters in the queue
row (so an add inside a caller's open transaction locks nothing others wait for), and the
transaction id of each event (readers never skip an event committed late).

Opening a store reads the version (one query); an older schema is migrated forward under
an advisory lock, in one transaction; a schema written by a newer dockyard is refused.
"""

from __future__ import annotations

import zlib
from typing import Any

import psycopg

from ...errors import SchemaVersionError

_C = 'COLLATE "C"'
#: Migrations by the version they lead to; never edit a released one, add the next.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        f"""CREATE TABLE queues (
            qid BIGSERIAL PRIMARY KEY,
            prefix TEXT {_C} NOT NULL,
            name TEXT {_C} NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            counter BIGINT NOT NULL DEFAULT 0,
            seq BIGINT NOT NULL DEFAULT 0,
            pc BIGINT NOT NULL DEFAULT 0,
            stalled_check_until BIGINT NOT NULL DEFAULT 0,
            limiter_count BIGINT NOT NULL DEFAULT 0,
            limiter_until BIGINT NOT NULL DEFAULT 0,
            concurrency BIGINT,
            rate_max BIGINT,
            rate_duration BIGINT,
            max_events BIGINT,
            UNIQUE (prefix, name)
        )""",
        f"""CREATE TABLE jobs (
            qid BIGINT NOT NULL,
            id TEXT {_C} NOT NULL,
            name TEXT NOT NULL,
            data TEXT NOT NULL,
            opts TEXT NOT NULL,
            timestamp BIGINT NOT NULL,
            delay BIGINT NOT NULL DEFAULT 0,
            priority BIGINT NOT NULL DEFAULT 0,
            progress TEXT,
            atm BIGINT NOT NULL DEFAULT 0,
            ats BIGINT NOT NULL DEFAULT 0,
            stc BIGINT NOT NULL DEFAULT 0,
            failed_reason TEXT,
            stacktrace TEXT,
            returnvalue TEXT,
            processed_on BIGINT,
            finished_on BIGINT,
            pb TEXT,
            defa TEXT,
            state TEXT {_C} NOT NULL,
            score BIGINT NOT NULL,
            lock_token TEXT {_C},
            lock_until BIGINT,
            stalled INTEGER NOT NULL DEFAULT 0,
            deid TEXT {_C},
            parent_qid BIGINT,
            parent_id TEXT {_C},
            parent_policy TEXT,
            PRIMARY KEY (qid, id)
        ) WITH (fillfactor = 80)""",
        "CREATE INDEX jobs_by_state ON jobs (qid, state, score)",
        "CREATE INDEX jobs_active_by_token ON jobs (qid, lock_token) WHERE state = 'active'",
        f"""CREATE TABLE logs (
            seq BIGSERIAL PRIMARY KEY,
            qid BIGINT NOT NULL,
            job_id TEXT {_C} NOT NULL,
            line TEXT NOT NULL
        )""",
        "CREATE INDEX logs_by_job ON logs (qid, job_id, seq)",
        """CREATE TABLE events (
            tx XID8 NOT NULL DEFAULT pg_current_xact_id(),
            id BIGSERIAL PRIMARY KEY,
            qid BIGINT NOT NULL,
            ms BIGINT NOT NULL,
            name TEXT NOT NULL,
            fields TEXT
        )""",
        "CREATE INDEX events_by_queue ON events (qid, id)",
        f"""CREATE TABLE dedup (
            qid BIGINT NOT NULL,
            id TEXT {_C} NOT NULL,
            job_id TEXT {_C} NOT NULL,
            expires BIGINT,
            PRIMARY KEY (qid, id)
        )""",
        """CREATE TABLE metrics (
            qid BIGINT NOT NULL,
            kind TEXT NOT NULL,
            count BIGINT NOT NULL DEFAULT 0,
            prev_ts BIGINT,
            prev_count BIGINT NOT NULL DEFAULT 0,
            data TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (qid, kind)
        )""",
        f"""CREATE TABLE schedulers (
            qid BIGINT NOT NULL,
            sid TEXT {_C} NOT NULL,
            name TEXT NOT NULL,
            data TEXT NOT NULL,
            opts TEXT NOT NULL,
            every_ms BIGINT,
            pattern TEXT,
            tz TEXT,
            start_ms BIGINT,
            end_ms BIGINT,
            lim BIGINT,
            offset_ms BIGINT,
            ic BIGINT NOT NULL,
            cnt BIGINT NOT NULL,
            next_ms BIGINT NOT NULL,
            PRIMARY KEY (qid, sid)
        )""",
        "CREATE INDEX schedulers_by_next ON schedulers (qid, next_ms)",
        f"""CREATE TABLE dependencies (
            parent_qid BIGINT NOT NULL,
            parent_id TEXT {_C} NOT NULL,
            child_key TEXT {_C} NOT NULL,
            state TEXT NOT NULL,
            value TEXT,
            ms BIGINT,
            PRIMARY KEY (parent_qid, parent_id, child_key)
        )""",
        "CREATE INDEX dependencies_by_state ON dependencies (parent_qid, parent_id, state)",
        # Ready order and priority order, shared by all queues of the schema.
        "CREATE SEQUENCE job_seq",
        "CREATE SEQUENCE prio_seq",
    ),
    # Counts without a scan: every statement on jobs appends its change per (queue, state)
    # to state_counts (append only: an add in a caller's open transaction locks no row that
    # others wait for); one statement in 256 also folds the committed rows it can lock
    # into one per (queue, state), skipping rows another transaction holds.
    2: (
        "LOCK TABLE jobs IN SHARE MODE",  # the backfill sees every committed job, no writer
        f"""CREATE TABLE state_counts (
            qid BIGINT NOT NULL,
            state TEXT {_C} NOT NULL,
            n BIGINT NOT NULL
        )""",
        "CREATE INDEX state_counts_by_queue ON state_counts (qid, state)",
        "CREATE SEQUENCE state_counts_fold",
        "INSERT INTO state_counts SELECT qid, state, count(*) FROM jobs GROUP BY qid, state",
        """CREATE FUNCTION count_states() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO state_counts
                SELECT qid, state, count(*) FROM new_rows GROUP BY qid, state;
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO state_counts
                SELECT qid, state, -count(*) FROM old_rows GROUP BY qid, state;
            ELSE
                INSERT INTO state_counts
                SELECT qid, state, sum(d) FROM (
                    SELECT qid, state, 1 AS d FROM new_rows
                    UNION ALL SELECT qid, state, -1 FROM old_rows
                ) AS moved GROUP BY qid, state HAVING sum(d) <> 0;
            END IF;
            IF nextval('state_counts_fold') % 256 = 0 THEN
                WITH gone AS (
                    DELETE FROM state_counts WHERE ctid = ANY (ARRAY(
                        SELECT ctid FROM state_counts FOR UPDATE SKIP LOCKED
                    )) RETURNING qid, state, n
                )
                INSERT INTO state_counts
                SELECT qid, state, sum(n) FROM gone GROUP BY qid, state HAVING sum(n) <> 0;
            END IF;
            RETURN NULL;
        END $$""",
        """CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON jobs
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_states()""",
        """CREATE TRIGGER jobs_counted_on_update AFTER UPDATE ON jobs
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION count_states()""",
        """CREATE TRIGGER jobs_counted_on_delete AFTER DELETE ON jobs
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_states()""",
    ),
    # Events are read and trimmed by (queue, id) only; the id's own unique index cost a
    # second index entry per event (about four events per job run), and the id comes from
    # its sequence anyway.
    3: ("ALTER TABLE events DROP CONSTRAINT events_pkey",),
}
LATEST = max(MIGRATIONS)
LEDGER = "dockyard_schema"


def lock_key(schema: str) -> int:
    """The advisory lock key of one schema: migrations and the opening of a store take it
    alone, every write transaction shares it (and then takes its queues' own locks, keyed
    ``(lock_key, qid)``; store.py)."""
    return zlib.crc32(f"dockyard:{schema}".encode()) - 2**31


def current_version(conn: psycopg.Connection[Any], schema: str) -> int:
    """The schema's version (0 when it has no dockyard tables yet)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".{LEDGER}',)).fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute(f'SELECT max(version) FROM "{schema}".{LEDGER}').fetchone()
    return int(found[0] or 0) if found else 0


def _refuse_newer(version: int, schema: str) -> None:
    if version > LATEST:
        raise SchemaVersionError(
            f"the PostgreSQL schema {schema!r} has dockyard schema version {version}, newer "
            f"than this dockyard knows ({LATEST}); upgrade dockyard to use it"
        )


def migrate(conn: psycopg.Connection[Any], schema: str, target: int = LATEST) -> int:
    """Bring the schema up to ``target`` (on an autocommit connection); its version after."""
    version = current_version(conn, schema)
    _refuse_newer(version, schema)
    if version >= target:
        return version
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema),))
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".{LEDGER} (version INTEGER PRIMARY KEY, '
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        version = current_version(conn, schema)  # another process may have moved it meanwhile
        _refuse_newer(version, schema)
        conn.execute(f'SET LOCAL search_path TO "{schema}"')
        while version < target:
            for statement in MIGRATIONS[version + 1]:
                conn.execute(statement.encode())
            version += 1
            conn.execute(f'INSERT INTO "{schema}".{LEDGER} (version) VALUES (%s)', (version,))
    return version
