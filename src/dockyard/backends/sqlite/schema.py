"""The SQLite file's schema: a version table and forward migrations, applied at open.

Each migration is a list of statements; a file at version N gets migrations N+1.. in one
``BEGIN IMMEDIATE`` transaction each, so several processes opening one file at once agree.
A file written by a newer dockyard (a version we do not know) is refused, not guessed at.
"""

from __future__ import annotations

import sqlite3

from ...errors import SchemaVersionError
from .schedulers import SCHEDULER_TABLES

#: Migrations by the version they lead to; never edit a released one, add the next.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE queues (
            qid INTEGER PRIMARY KEY,
            prefix TEXT NOT NULL,
            name TEXT NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            counter INTEGER NOT NULL DEFAULT 0,
            seq INTEGER NOT NULL DEFAULT 0,
            pc INTEGER NOT NULL DEFAULT 0,
            stalled_check_until INTEGER NOT NULL DEFAULT 0,
            limiter_count INTEGER NOT NULL DEFAULT 0,
            limiter_until INTEGER NOT NULL DEFAULT 0,
            UNIQUE (prefix, name)
        )""",
        """CREATE TABLE jobs (
            qid INTEGER NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            data TEXT NOT NULL,
            opts TEXT NOT NULL,
            timestamp INTEGER NOT NULL,
            delay INTEGER NOT NULL DEFAULT 0,
            priority INTEGER NOT NULL DEFAULT 0,
            progress TEXT,
            atm INTEGER NOT NULL DEFAULT 0,
            ats INTEGER NOT NULL DEFAULT 0,
            stc INTEGER NOT NULL DEFAULT 0,
            failed_reason TEXT,
            stacktrace TEXT,
            returnvalue TEXT,
            processed_on INTEGER,
            finished_on INTEGER,
            pb TEXT,
            defa TEXT,
            state TEXT NOT NULL,
            score INTEGER NOT NULL,
            lock_token TEXT,
            lock_until INTEGER,
            stalled INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (qid, id)
        ) WITHOUT ROWID""",
        "CREATE INDEX jobs_by_state ON jobs (qid, state, score)",
        """CREATE TABLE logs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            qid INTEGER NOT NULL,
            job_id TEXT NOT NULL,
            line TEXT NOT NULL
        )""",
        "CREATE INDEX logs_by_job ON logs (qid, job_id, seq)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            qid INTEGER NOT NULL,
            ms INTEGER NOT NULL,
            name TEXT NOT NULL,
            fields TEXT
        )""",
        "CREATE INDEX events_by_queue ON events (qid, id)",
    ),
    2: (
        "ALTER TABLE queues ADD COLUMN concurrency INTEGER",
        "ALTER TABLE queues ADD COLUMN rate_max INTEGER",
        "ALTER TABLE queues ADD COLUMN rate_duration INTEGER",
    ),
    3: (
        """CREATE TABLE dedup (
            qid INTEGER NOT NULL,
            id TEXT NOT NULL,
            job_id TEXT NOT NULL,
            expires INTEGER,
            PRIMARY KEY (qid, id)
        ) WITHOUT ROWID""",
        "ALTER TABLE jobs ADD COLUMN deid TEXT",
    ),
    4: (
        """CREATE TABLE metrics (
            qid INTEGER NOT NULL,
            kind TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            prev_ts INTEGER,
            prev_count INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (qid, kind)
        ) WITHOUT ROWID""",
    ),
    5: ("ALTER TABLE queues ADD COLUMN max_events INTEGER",),
    6: SCHEDULER_TABLES,
    # Flows: a child names its parent (queue row and id) and the policy of its failure; a
    # parent's children are rows of ``dependencies`` by child key, in one of four states:
    # pending, processed (value: return value JSON), ignored (value: reason), failed (ms).
    7: (
        "ALTER TABLE jobs ADD COLUMN parent_qid INTEGER",
        "ALTER TABLE jobs ADD COLUMN parent_id TEXT",
        "ALTER TABLE jobs ADD COLUMN parent_policy TEXT",
        """CREATE TABLE dependencies (
            parent_qid INTEGER NOT NULL,
            parent_id TEXT NOT NULL,
            child_key TEXT NOT NULL,
            state TEXT NOT NULL,
            value TEXT,
            ms INTEGER,
            PRIMARY KEY (parent_qid, parent_id, child_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX dependencies_by_state ON dependencies (parent_qid, parent_id, state)",
    ),
}
LATEST = max(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The file's schema version (0 for a new file)."""
    conn.execute("CREATE TABLE IF NOT EXISTS dockyard_schema (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM dockyard_schema").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, path: str, target: int = LATEST) -> int:
    """Bring the file up to ``target``; returns the version it is at afterwards."""
    version = current_version(conn)
    if version > LATEST:
        raise SchemaVersionError(
            f"the SQLite file {path} has schema version {version}, newer than this dockyard "
            f"knows ({LATEST}); upgrade dockyard to use it"
        )
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = current_version(conn)  # another process may have moved it meanwhile
            if version < target:
                for statement in MIGRATIONS[version + 1]:
                    conn.execute(statement)
                version += 1
                conn.execute("INSERT INTO dockyard_schema (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version
