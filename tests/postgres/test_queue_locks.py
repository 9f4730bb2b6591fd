"""Per-queue write locks on PostgreSQL: queues of one schema write side by side, a
transition that reaches another queue waits for it without deadlocking, and a schema's
own lock (migrations, an older dockyard) still stops every writer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import psycopg

from dockyard import FlowProducer, Job, Queue, Worker
from dockyard.backends.postgres.schema import lock_key

from ..waiting import wait_for


def _split(url: str) -> tuple[str, str]:
    return url.split("?", 1)[0], parse_qs(urlsplit(url).query)["schema"][0]


async def _qid(url: str, name: str) -> int:
    conninfo, schema = _split(url)
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        row = await (
            await conn.execute(f'SELECT qid FROM "{schema}".queues WHERE name = %s', (name,))
        ).fetchone()
        assert row is not None
        return int(row[0])


@asynccontextmanager
async def _holding(url: str, lock_sql: str) -> AsyncIterator[None]:
    """Another session holds an advisory lock (in an open transaction) until the block ends."""
    conninfo, _ = _split(url)
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        await conn.execute(lock_sql)
        yield
        await conn.rollback()


async def _waiting_on(url: str, objid: int) -> bool:
    """A session waits for an advisory lock whose low key is ``objid``."""
    conninfo, _ = _split(url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid::bigint = %s",
                (objid % 2**32,),
            )
        ).fetchone()
        return bool(row and row[0])


async def test_a_queue_writes_while_another_queue_of_the_schema_is_locked(
    postgres_url: str,
) -> None:
    key = lock_key(_split(postgres_url)[1])
    async with Queue("a", url=postgres_url) as qa, Queue("b", url=postgres_url) as qb:
        await qa.add("warm", {})
        await qb.add("warm", {})
        qid_a, qid_b = await _qid(postgres_url, "a"), await _qid(postgres_url, "b")
        async with _holding(postgres_url, f"SELECT pg_advisory_xact_lock({key}, {qid_a})"):
            # (A custom id: a plain add takes no lock at all.)
            blocked = asyncio.ensure_future(qa.add("x", {}, job_id="x1"))
            # b is not held up by a's lock ...
            job = await asyncio.wait_for(qb.add("y", {}, job_id="y1"), 10)
            assert await job.get_state() == "waiting"
            # ... while a's writer waits for it.
            await wait_for(lambda: _waiting_on(postgres_url, qid_a), 10, "a's add to wait")
            assert not blocked.done()
            assert not await _waiting_on(postgres_url, qid_b)
        added = await asyncio.wait_for(blocked, 10)
        assert await added.get_state() == "waiting"
        assert (await qa.get_job_counts("waiting"))["waiting"] == 2


async def test_the_schema_lock_taken_alone_stops_every_queue(postgres_url: str) -> None:
    """What a migration, or a dockyard from before per-queue locks, takes."""
    key = lock_key(_split(postgres_url)[1])
    async with Queue("a", url=postgres_url) as qa, Queue("b", url=postgres_url) as qb:
        await qa.add("warm", {})
        await qb.add("warm", {})
        async with _holding(postgres_url, f"SELECT pg_advisory_xact_lock({key})"):
            writes = [asyncio.ensure_future(q.add("x", {}, job_id="x1")) for q in (qa, qb)]
            await wait_for(lambda: _waiting_on(postgres_url, key), 10, "both adds to wait")
            assert not any(w.done() for w in writes)
        await asyncio.wait_for(asyncio.gather(*writes), 10)
        assert (await qb.get_job_counts("waiting"))["waiting"] == 2


async def test_a_child_finishing_waits_for_its_parents_queue_then_releases_it(
    postgres_url: str,
) -> None:
    release = asyncio.Event()

    async def child(job: Job) -> str:
        await release.wait()
        return f"done {job.data['n']}"

    async with FlowProducer(url=postgres_url) as flows, Queue("parents", url=postgres_url) as pq:
        node = await flows.add(
            {"name": "p", "queue": "parents",
             "children": [{"name": "c", "queue": "children", "data": {"n": 1}}]}
        )  # fmt: skip
        parent_qid = await _qid(postgres_url, "parents")
        key = lock_key(_split(postgres_url)[1])
        async with Worker("children", child, url=postgres_url, concurrency=1):
            async with _holding(postgres_url, f"SELECT pg_advisory_xact_lock({key}, {parent_qid})"):
                release.set()
                # The child's finish reaches the parent's queue, finds it held, and waits
                # for it (taking both queues' locks in order) instead of failing.
                await wait_for(
                    lambda: _waiting_on(postgres_url, parent_qid), 10, "the finish to wait"
                )
                assert await node.job.get_state() == "waiting-children"
            await wait_for(
                lambda: _state_is(pq, node.job.id, "waiting"), 10, "the parent to be released"
            )
        parent = await pq.get_job(node.job.id)
        assert parent is not None
        assert list((await parent.get_children_values()).values()) == ["done 1"]


async def _state_is(queue: Queue, job_id: str, state: str) -> bool:
    job = await queue.get_job(job_id)
    return job is not None and await job.get_state() == state


async def test_flows_across_queues_finish_under_concurrent_adds_and_workers(
    postgres_url: str,
) -> None:
    """Flows added while workers of both queues finish children and parents: each
    transaction takes its queues' locks without a deadlock, every parent gets all its
    children's values and completes once."""
    flows_n, children_n = 40, 3
    parents_done: list[str] = []

    async def child(job: Job) -> int:
        return int(job.data["i"])

    async def parent(job: Job) -> int:
        parents_done.append(job.id)
        return sum((await job.get_children_values()).values())

    async with (
        FlowProducer(url=postgres_url) as flows,
        Queue("parents", url=postgres_url) as pq,
        Worker("children", child, url=postgres_url, concurrency=8),
        Worker("parents", parent, url=postgres_url, concurrency=4),
    ):

        async def add(n: int) -> str:
            node = await flows.add(
                {"name": "p", "queue": "parents", "data": {"n": n},
                 "children": [{"name": "c", "queue": "children", "data": {"i": i}}
                              for i in range(children_n)]}
            )  # fmt: skip
            return node.job.id

        ids = await asyncio.gather(*(add(n) for n in range(flows_n)))
        await wait_for(
            lambda: len(parents_done) >= flows_n, 60, f"{flows_n} parents to complete"
        )
        await wait_for(
            lambda: _completed(pq, flows_n), 10, "the parents' completions to be stored"
        )
        for job_id in ids:
            job = await pq.get_job(job_id)
            assert job is not None
            assert job.return_value == sum(range(children_n))
    assert sorted(parents_done) == sorted(ids)


async def _completed(queue: Queue, n: int) -> bool:
    return (await queue.get_job_counts("completed"))["completed"] == n


async def test_a_commit_wakes_the_waiters_of_the_queues_it_wrote_only(postgres_url: str) -> None:
    """NOTIFY names the queue: an idle worker of one queue is not woken (to look for
    work) by every commit to the other queues of its schema."""
    async with Queue("a", url=postgres_url) as qa, Queue("b", url=postgres_url) as qb:
        await qa.add("warm", {})
        await qb.add("warm", {})
        na, nb = qa.backend._notifier, qb.backend._notifier  # type: ignore[attr-defined]
        before_a, before_b = na.version(), nb.version()
        await qb.add("x", {})
        await wait_for(lambda: nb.version() != before_b, 10, "b's waiters to be notified")
        assert na.version() == before_a
        await qa.add("x", {})
        await wait_for(lambda: na.version() != before_a, 10, "a's waiters to be notified")
        # A payload naming only the schema (a dockyard from before per-queue payloads)
        # wakes every queue of it.
        conninfo, schema = _split(postgres_url)
        seen_a, seen_b = na.version(), nb.version()
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await conn.execute(f"NOTIFY dockyard, '{schema}'")
        await wait_for(
            lambda: na.version() != seen_a and nb.version() != seen_b, 10, "both to be notified"
        )


async def test_a_flow_wakes_the_waiters_of_every_queue_it_wrote(postgres_url: str) -> None:
    async with (
        FlowProducer(url=postgres_url) as flows,
        Queue("parents", url=postgres_url) as pq,
        Queue("children", url=postgres_url) as cq,
    ):
        await pq.add("warm", {})
        await cq.add("warm", {})
        np_, nc = pq.backend._notifier, cq.backend._notifier  # type: ignore[attr-defined]
        seen_p, seen_c = np_.version(), nc.version()
        await flows.add(
            {"name": "p", "queue": "parents", "children": [{"name": "c", "queue": "children"}]}
        )
        await wait_for(
            lambda: np_.version() != seen_p and nc.version() != seen_c, 10, "both queues' waiters"
        )


async def test_a_plain_add_takes_no_lock(postgres_url: str) -> None:
    """A plain add is one statement of its own (as an add in a caller's transaction),
    so a long transition holding the queue's lock does not hold producers up."""
    key = lock_key(_split(postgres_url)[1])
    async with Queue("a", url=postgres_url) as qa:
        await qa.add("warm", {})
        qid = await _qid(postgres_url, "a")
        async with _holding(postgres_url, f"SELECT pg_advisory_xact_lock({key}, {qid})"):
            job = await asyncio.wait_for(qa.add("x", {}), 10)
            assert await job.get_state() == "waiting"


@asynccontextmanager
async def _idle_worker(url: str) -> AsyncIterator[tuple[Queue, int, list[str]]]:
    """Queue "a" (and its qid) with a worker that has run one job and gone idle; the
    names of the jobs it ran, in order."""
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.name)

    async with Queue("a", url=url) as qa:
        await qa.add("warm", {})
        qid = await _qid(url, "a")
        async with Worker("a", handler, url=url):
            await wait_for(lambda: ran == ["warm"], 10, "the first job")
            yield qa, qid, ran


async def test_idle_claims_share_the_queue_and_wait_for_its_transitions(
    postgres_url: str,
) -> None:
    """An idle worker's claim shares the queue's lock with other claimers (SKIP LOCKED
    keeps them apart) but waits for a transition holding it alone."""
    key = lock_key(_split(postgres_url)[1])
    async with _idle_worker(postgres_url) as (qa, qid, ran):
        async with _holding(
            postgres_url, f"SELECT pg_advisory_xact_lock_shared({key}, {qid})"
        ):  # another claimer
            await qa.add("shared", {})
            await wait_for(lambda: ran == ["warm", "shared"], 10, "a claim beside it")
        async with _holding(postgres_url, f"SELECT pg_advisory_xact_lock({key}, {qid})"):
            await qa.add("held", {})
            await wait_for(lambda: _waiting_on(postgres_url, qid), 10, "the claim to wait")
            assert ran == ["warm", "shared"]
        await wait_for(lambda: ran == ["warm", "shared", "held"], 10, "the claim after it")


async def _worker_idle(url: str) -> bool:
    """No session waits for an advisory lock and every worker connection is idle."""
    conninfo, _ = _split(url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dw:%%' "
                "AND state <> 'idle'"
            )
        ).fetchone()
        waiting = await (
            await conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
        ).fetchone()
        return bool(row and row[0] == 0 and waiting and waiting[0] == 0)


async def test_a_claim_that_waited_for_a_pause_sees_it(postgres_url: str) -> None:
    """An idle claim waiting for a transition that pauses the queue claims nothing after
    it: it reads the queue after taking the lock, not before."""
    conninfo, schema = _split(postgres_url)
    key = lock_key(schema)
    async with _idle_worker(postgres_url) as (qa, qid, ran):
        async with await psycopg.AsyncConnection.connect(conninfo) as holder:
            await holder.execute(f"SELECT pg_advisory_xact_lock({key}, {qid})")
            job = await qa.add("held", {})  # a plain add takes no lock
            await wait_for(lambda: _waiting_on(postgres_url, qid), 10, "the claim to wait")
            # The transition holding the lock pauses the queue, then commits.
            await holder.execute(
                f'UPDATE "{schema}".queues SET paused = 1 WHERE qid = %s', (qid,)
            )
            await holder.commit()
        await wait_for(lambda: _worker_idle(postgres_url), 10, "the claim to end")
        assert ran == ["warm"]
        assert await job.get_state() == "waiting"
        await qa.resume()
        await wait_for(lambda: ran == ["warm", "held"], 10, "the job after resume")
