"""Adding jobs inside the caller's own PostgreSQL transaction (``connection=``)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from dockyard import InvalidOptionError, Job, NotSupportedError, Queue, Worker
from dockyard.sync import Queue as SyncQueue

from ..waiting import wait_for


def _conninfo(url: str) -> str:
    return url.split("?", 1)[0]


async def _completed(queue: Queue, n: int) -> bool:
    return await queue.get_job_counts("completed") == {"completed": n}


async def test_a_job_added_in_a_committed_transaction_is_processed(postgres_url: str) -> None:
    done: list[dict[str, int]] = []

    async def handler(job: Job) -> None:
        done.append(job.data)

    async with Queue("q", url=postgres_url) as queue, Worker("q", handler, url=postgres_url):
        async with await psycopg.AsyncConnection.connect(_conninfo(postgres_url)) as conn:
            await conn.execute("CREATE TEMP TABLE orders (id int)")
            job = await queue.add("ship", {"order": 7}, connection=conn)
            await conn.execute("INSERT INTO orders VALUES (7)")
            # Not committed yet: no one else sees the job.
            assert await queue.get_job(job.id) is None
            await conn.commit()
        await wait_for(lambda: done == [{"order": 7}], what="the committed job to run")
        await wait_for(
            lambda: _completed(queue, 1), what="its completion to be stored (after the handler)"
        )


async def test_a_job_added_in_a_rolled_back_transaction_never_existed(postgres_url: str) -> None:
    async with Queue("q", url=postgres_url) as queue:
        async with await psycopg.AsyncConnection.connect(_conninfo(postgres_url)) as conn:
            jobs = await queue.add_bulk([("a", {"i": 1}), ("b", {"i": 2})], connection=conn)
            await conn.rollback()
        assert [await queue.get_job(job.id) for job in jobs] == [None, None]
        counts = await queue.get_job_counts()
        assert sum(counts.values()) == 0
        # The queue works on after the rolled-back add.
        after = await queue.add("c", {})
        assert await after.get_state() == "waiting"


async def test_an_idle_worker_wakes_when_the_transaction_commits(postgres_url: str) -> None:
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()

    async with Queue("q", url=postgres_url) as queue, Worker("q", handler, url=postgres_url):
        await queue.add("warm", {})
        await asyncio.wait_for(started.wait(), 10)
        started.clear()
        async with await psycopg.AsyncConnection.connect(_conninfo(postgres_url)) as conn:
            await queue.add("a", {}, connection=conn)
            await conn.commit()
        await asyncio.wait_for(started.wait(), 10)


async def test_an_autocommit_connection_adds_at_once(postgres_url: str) -> None:
    async with Queue("q", url=postgres_url) as queue:
        async with await psycopg.AsyncConnection.connect(
            _conninfo(postgres_url), autocommit=True
        ) as conn:
            job = await queue.add("a", {"x": 1}, connection=conn)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert await job.get_state() == "waiting"


async def test_events_of_a_late_commit_reach_a_reader_that_resumed_past_later_ones(
    postgres_url: str,
) -> None:
    async with Queue("q", url=postgres_url) as queue:
        async with await psycopg.AsyncConnection.connect(_conninfo(postgres_url)) as conn:
            late = await queue.add("late", {}, connection=conn)
            early = await queue.add("early", {})
            # The early job's events wait until the open transaction ends...
            assert await queue.backend.read_events("0", timeout=0) == []
            await conn.commit()
        events = await queue.backend.read_events("0", timeout=5)
        added = [f["jobId"] for _, f in events if f["event"] == "added"]
        assert sorted(added) == sorted([late.id, early.id])


def test_the_sync_api_adds_with_a_sync_connection(postgres_url: str) -> None:
    with SyncQueue("q", url=postgres_url) as queue:
        with psycopg.connect(_conninfo(postgres_url)) as conn:
            job = queue.add("a", {"x": 1}, connection=conn)
            assert queue.get_job(job.id) is None
            conn.commit()
        assert queue.get_state(job.id) == "waiting"
        with psycopg.connect(_conninfo(postgres_url)) as conn:
            gone = queue.add_bulk([("b", {})], connection=conn)
            conn.rollback()
        assert queue.get_job(gone[0].id) is None


async def test_a_connection_for_another_store_is_refused(tmp_path: object) -> None:
    async with Queue("q", url=f"sqlite:///{tmp_path}/jobs.db") as queue:
        with pytest.raises(NotSupportedError, match="postgresql"):
            await queue.add("a", {}, connection=object())
        with pytest.raises(NotSupportedError, match="postgresql"):
            await queue.add_bulk([("a", {})], connection=object())
        assert await queue.get_job_counts("waiting") == {"waiting": 0}


async def test_a_connection_that_is_not_psycopg_is_refused(postgres_url: str) -> None:
    async with Queue("q", url=postgres_url) as queue:
        with pytest.raises(InvalidOptionError, match="psycopg"):
            await queue.add("a", {}, connection="postgresql://nope")
        assert await queue.get_job_counts("waiting") == {"waiting": 0}


async def test_a_writing_transaction_left_open_holds_events_back_only_for_a_while(
    postgres_url: str,
) -> None:
    connect = psycopg.AsyncConnection.connect(_conninfo(postgres_url))
    async with Queue("q", url=postgres_url) as queue, await connect as conn:
        await conn.execute("CREATE TEMP TABLE held (id int)")
        await conn.execute("INSERT INTO held VALUES (1)")  # a transaction id, kept open
        job = await queue.add("a", {})

        async def added() -> bool:
            events = await queue.backend.read_events("0", timeout=0)
            return any(f.get("jobId") == job.id for _, f in events)

        assert not await added()
        await wait_for(added, timeout=30, what="the event despite the open transaction")
        await conn.rollback()
