"""The PostgreSQL store itself: schema versions and migrations, URLs, refused logins."""

from __future__ import annotations

import asyncio
import re

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard import (
    BackendAuthError,
    BackendRefusedError,
    BackendUnavailableError,
    InvalidOptionError,
    Queue,
    SchemaVersionError,
)
from dockyard.backends import list_queues
from dockyard.backends.postgres import parse_url
from dockyard.backends.postgres.schema import LATEST, LEDGER, migrate
from dockyard.devserver import free_port

from ..pgserver import PostgresServer


def _admin(server: PostgresServer) -> psycopg.Connection:
    return psycopg.connect(server.url(), autocommit=True)


def test_migrations_run_from_an_empty_database_once(postgres_server: PostgresServer) -> None:
    with _admin(postgres_server) as conn:
        assert migrate(conn, "m_empty", target=0) == 0
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'm_empty'").fetchone()
        assert found is None  # nothing to do: nothing created
        assert migrate(conn, "m_empty") == LATEST
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'm_empty'"
            ).fetchall()
        }
        assert {"queues", "jobs", "logs", "events", "dedup", "metrics", LEDGER} <= tables
        assert migrate(conn, "m_empty") == LATEST  # idempotent
        versions = conn.execute(f"SELECT count(*) FROM m_empty.{LEDGER}").fetchone()
        assert versions == (LATEST,)


async def test_a_schema_from_a_newer_dockyard_is_refused(postgres_server: PostgresServer) -> None:
    with _admin(postgres_server) as conn:
        migrate(conn, "m_newer")
        conn.execute(f"INSERT INTO m_newer.{LEDGER} (version) VALUES (%s)", (LATEST + 1,))
        with pytest.raises(SchemaVersionError, match="upgrade dockyard"):
            migrate(conn, "m_newer")
    async with Queue("q", url=postgres_server.url(schema="m_newer")) as queue:
        with pytest.raises(SchemaVersionError, match="m_newer"):
            await queue.add("a", {})


async def test_the_store_lives_in_the_schema_the_url_names(postgres_server: PostgresServer) -> None:
    async with Queue("q", url=postgres_server.url(schema="m_named")) as queue:
        await queue.add("a", {})
    with _admin(postgres_server) as conn:
        row = conn.execute("SELECT count(*) FROM m_named.jobs").fetchone()
        assert row == (1,)


async def test_list_queues_names_the_queues_with_jobs(postgres_url: str) -> None:
    async with Queue("b", url=postgres_url) as b, Queue("a", url=postgres_url) as a:
        await a.add("x", {})
        await b.add("x", {})
    assert await list_queues(postgres_url) == ["a", "b"]


async def test_a_wrong_password_is_refused_at_once(postgres_server: PostgresServer) -> None:
    from dockyard.backends.postgres import PostgresBackend

    url = postgres_server.url(schema="m_auth", password="wrong")
    # Retrying for ever: only a refusal that is not retried can end the add.
    async with Queue("q", backend=PostgresBackend(url, "q", retry_for=None)) as queue:
        with pytest.raises(BackendAuthError, match="password"):
            await asyncio.wait_for(queue.add("a", {}), 60)


async def test_a_missing_database_is_refused_with_its_own_message(
    postgres_server: PostgresServer,
) -> None:
    async with Queue("q", url=postgres_server.url("no_such_db")) as queue:
        with pytest.raises(BackendRefusedError, match="does not exist") as caught:
            await queue.add("a", {})
        assert not isinstance(caught.value, BackendAuthError)


async def test_an_unreachable_server_fails_after_the_retry_window() -> None:
    from dockyard.backends.postgres import PostgresBackend

    url = f"postgresql://u:p@127.0.0.1:{free_port()}/db"
    backend = PostgresBackend(url, "q", retry_for=0.5)
    async with Queue("q", backend=backend) as queue:
        with pytest.raises(BackendUnavailableError, match="cannot reach"):
            await queue.add("a", {})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://h/db?schema=Bad",
        "postgresql://h/db?schema=1x",
        "postgresql://h/db?schema=a;drop",
        "postgresql://h/db?schema=" + "a" * 41,
        "mysql://h/db",
    ],
)
def test_bad_urls_are_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(InvalidOptionError):
        parse_url(url)


def test_urls_keep_their_connection_options_and_name_the_schema() -> None:
    conninfo, schema = parse_url("postgres://u:p@h:5433/db?sslmode=disable&schema=jobs")
    assert (conninfo, schema) == ("postgresql://u:p@h:5433/db?sslmode=disable", "jobs")
    assert parse_url("postgresql://h/db")[1] == "dockyard"


@given(st.text(max_size=50))
def test_a_schema_is_taken_only_as_a_plain_identifier(schema: str) -> None:
    from urllib.parse import quote

    url = f"postgresql://h/db?schema={quote(schema)}"
    if re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", schema):
        assert parse_url(url)[1] == schema
    else:
        with pytest.raises(InvalidOptionError):
            parse_url(url)


async def test_text_holding_nul_reads_back_as_written(postgres_url: str) -> None:
    async with Queue("q", url=postgres_url) as queue:
        job = await queue.add("a\x00b", {"text": "x\x00y"}, job_id="j\x00")
        marked = await queue.add("\x01name", {})
        await job.log("line\x00two")
        assert await queue.get_job_logs(job.id) == ["line\x00two"]
        stored = await queue.get_job("j\x00")
        assert stored is not None and stored.name == "a\x00b"
        assert stored.data == {"text": "x\x00y"}
        again = await queue.get_job(marked.id)
        assert again is not None and again.name == "\x01name"
        assert await queue.get_job("j") is None


async def test_locks_are_renewed_in_one_call_and_lost_ones_named(postgres_url: str) -> None:
    from dockyard.backends.base import Lease

    async with Queue("q", url=postgres_url) as queue:
        await queue.add_bulk([("a", {}), ("b", {}), ("c", {})])
        fetched = await queue.backend.fetch(Lease(token="t1", lock_ms=30_000), 2)
        first, second = (job.id for job in fetched.jobs)
        locks = {first: "t1", second: "wrong", "nope": "t1"}
        lost = await queue.backend.extend_locks(locks, 60_000)
        assert sorted(lost) == sorted([second, "nope"])
        job = await queue.get_job(first)
        assert job is not None and await job.get_state() == "active"
