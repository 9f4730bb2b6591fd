"""Counts on PostgreSQL come from state_counts (maintained by triggers, folded now and
then), not from a scan: they must equal a real count of the jobs after any mix of
transitions, folds, caller transactions and pages read from either end."""

from __future__ import annotations

import asyncio

import psycopg

from dockyard import Job, Queue, Worker
from dockyard.backends.postgres.schema import migrate

from ..pgserver import PostgresServer
from ..waiting import wait_for


def _real_counts(url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT j.state, count(*) FROM {schema}.jobs j JOIN {schema}.queues q "
            "ON q.qid = j.qid WHERE q.name = 'q' GROUP BY j.state"
        ).fetchall()
    return {("waiting" if r[0] == "wait" else r[0]): int(r[1]) for r in rows}


def _stored(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def _schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


async def test_counts_equal_a_real_count_after_many_transitions(postgres_url: str) -> None:
    async def handler(job: Job) -> None:
        if job.data["i"] % 3 == 0:
            raise ValueError("a third of the jobs fail")

    async with Queue("q", url=postgres_url) as queue:
        # Enough statements (> 256) that state_counts is folded along the way.
        for i in range(300):
            await queue.add("one", {"i": i})
        await queue.add_bulk([("bulk", {"i": i}) for i in range(300, 600)])
        await queue.add("later", {"i": 1}, delay=3600)
        async with Worker("q", handler, url=postgres_url, concurrency=7):
            await wait_for(
                lambda: _real_counts(postgres_url, _schema(postgres_url)).get("waiting", 0) == 0,
                what="every ready job to run",
            )
            await wait_for(
                lambda: _real_counts(postgres_url, _schema(postgres_url)).get("active", 0) == 0,
                what="the last jobs to finish",
            )
        await queue.clean(0, limit=50, state="completed")
        failed = await queue.get_failed(0, 9)
        for job in failed[:5]:
            await job.remove()
        async with await psycopg.AsyncConnection.connect(postgres_url.split("?")[0]) as conn:
            await queue.add_bulk([("kept", {"i": 0}), ("kept", {"i": 1})], connection=conn)
            await conn.commit()
            await queue.add("gone", {"i": 2}, connection=conn)
            await conn.rollback()
        counts = await queue.get_job_counts()
        real = _real_counts(postgres_url, _schema(postgres_url))
        assert _stored(counts) == real
        assert real["completed"] == 400 - 50 and real["failed"] == 200 - 5
        assert real["waiting"] == 2 and real["delayed"] == 1


async def test_a_page_read_from_the_far_end_is_the_same_page(postgres_url: str) -> None:
    async with Queue("q", url=postgres_url) as queue:
        await queue.add_bulk([("n", {"i": i}) for i in range(41)])
        everything = [job.id for job in await queue.get_jobs("waiting", 0, -1)]
        assert len(everything) == 41
        for start, end in ((0, 9), (30, 39), (35, 40), (-10, -1), (20, 20), (38, 100)):
            page = [job.id for job in await queue.get_jobs("waiting", start, end)]
            stop = None if end == -1 or end >= 40 else end + 1
            assert page == everything[start:stop], (start, end)
        oldest = [job.id for job in await queue.get_jobs("waiting", -5, -1, asc=True)]
        assert oldest == [job.id for job in await queue.get_jobs("waiting", 0, -1, asc=True)][-5:]


async def test_counts_of_two_queues_in_one_schema_stay_apart(postgres_url: str) -> None:
    async with Queue("q", url=postgres_url) as q, Queue("other", url=postgres_url) as other:
        await asyncio.gather(
            q.add_bulk([("a", {}) for _ in range(5)]),
            other.add_bulk([("b", {}) for _ in range(3)]),
        )
        assert await q.get_job_counts("waiting") == {"waiting": 5}
        assert await other.get_job_counts("waiting") == {"waiting": 3}


def test_migrating_a_version_1_schema_counts_the_jobs_it_holds(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url()
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrate(conn, "m_counts", target=1) == 1
        conn.execute("INSERT INTO m_counts.queues (prefix, name) VALUES ('bull', 'q')")
        for i, state in enumerate(["wait", "wait", "completed", "failed", "wait"]):
            conn.execute(
                "INSERT INTO m_counts.jobs (qid, id, name, data, opts, timestamp, state, score) "
                "SELECT qid, %s, 'n', '{}', '{}', 0, %s, %s FROM m_counts.queues",
                (str(i), state, i),
            )
        migrate(conn, "m_counts")
        rows = conn.execute(
            "SELECT state, sum(n) FROM m_counts.state_counts GROUP BY state ORDER BY state"
        ).fetchall()
    assert [(state, int(n)) for state, n in rows] == [("completed", 1), ("failed", 1), ("wait", 3)]
