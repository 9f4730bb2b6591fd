"""An SQLite file from before job schedulers opens, migrates, keeps its jobs and then
keeps schedulers."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from dockyard.backends.base import NewJob
from dockyard.backends.schedulerstore import SchedulerSpec
from dockyard.backends.sqlite import SqliteBackend
from dockyard.backends.sqlite.schedulers import SCHEDULER_TABLES
from dockyard.backends.sqlite.schema import LATEST, MIGRATIONS, current_version, migrate
from dockyard.backends.sqlite.store import QueueStore

#: The schema version that adds the schedulers table (found, not written down, so a
#: renumbering of the steps at a merge leaves this test as it is).
SCHEDULERS_VERSION = next(v for v, step in MIGRATIONS.items() if step is SCHEDULER_TABLES)


async def test_a_file_at_the_previous_version_migrates_and_keeps_its_jobs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, str(path), target=SCHEDULERS_VERSION - 1) == SCHEDULERS_VERSION - 1
    assert (
        conn.execute("SELECT name FROM sqlite_master WHERE name = 'schedulers'").fetchone() is None
    )
    store = QueueStore(conn, "bull", "q")
    now = int(time.time() * 1000)
    with store.tx():
        old_id = store.add(
            NewJob(
                name="old",
                data='{"a": 1}',
                opts="{}",
                timestamp=now,
                delay=0,
                priority=0,
                lifo=False,
                job_id=None,
            ),
            now,
        )
    conn.close()

    backend = SqliteBackend(f"sqlite:///{path}", "q")
    try:
        job = await backend.get_job(old_id)
        assert job is not None and job.name == "old" and job.data == {"a": 1}
        spec = SchedulerSpec(
            scheduler_id="s", every_ms=1_000, pattern=None, tz=None, start_ms=None,
            end_ms=None, limit=None, offset_ms=None, immediately=False, name="n",
            data="{}", opts="{}",
        )  # fmt: skip
        assert await backend.schedulers.upsert_scheduler(spec, None, now) == f"repeat:s:{now}"
        info = await backend.schedulers.get_scheduler("s")
        assert info is not None and info.every_ms == 1_000
    finally:
        await backend.close()
    check = sqlite3.connect(path)
    try:
        assert current_version(check) == LATEST
    finally:
        check.close()
