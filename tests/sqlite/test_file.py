"""The SQLite file itself: WAL mode, schema versions and migrations, bad URLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dockyard import InvalidOptionError, NotSupportedError, Queue
from dockyard.backends.sqlite import parse_url
from dockyard.backends.sqlite.schema import LATEST, MIGRATIONS, migrate


async def test_a_new_file_is_in_wal_mode_at_the_latest_schema(tmp_path: Path) -> None:
    async with Queue("q", url=f"sqlite:///{tmp_path}/sub/dir/jobs.db") as queue:
        await queue.add("a", {})
    with sqlite3.connect(tmp_path / "sub/dir/jobs.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT max(version) FROM dockyard_schema").fetchone()[0] == LATEST


def test_migrations_run_forward_from_an_older_version(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path, target=0) == 0
    assert conn.execute("SELECT count(*) FROM dockyard_schema").fetchone()[0] == 0
    assert migrate(conn, path) == LATEST == max(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"queues", "jobs", "logs", "events"} <= tables
    assert migrate(conn, path) == LATEST  # idempotent
    conn.close()


def test_a_file_from_a_newer_dockyard_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path)
    conn.execute("INSERT INTO dockyard_schema (version) VALUES (?)", (LATEST + 1,))
    with pytest.raises(NotSupportedError, match="upgrade dockyard"):
        migrate(conn, path)
    conn.close()


async def test_jobs_survive_closing_and_reopening_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with Queue("q", url=url) as queue:
        job = await queue.add("keep", {"x": 1}, delay=3600)
    async with Queue("q", url=url) as queue:
        again = await queue.get_job(job.id)
        assert again is not None and again.data == {"x": 1}
        assert await again.get_state() == "delayed"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/jobs.db",
        "sqlite:///",
        "sqlite:///jobs.db?mode=x",
        "sqlite:///j.db?synchronous=off",
    ],
)
def test_bad_urls_are_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(InvalidOptionError):
        parse_url(url)


def test_urls_name_relative_and_absolute_files() -> None:
    assert parse_url("sqlite:////var/tmp/x.db") == ("/var/tmp/x.db", "normal")
    path, sync = parse_url("sqlite:///rel/x.db?synchronous=full")
    assert path.endswith("/rel/x.db") and Path(path).is_absolute() and sync == "full"
