"""Adding flows inside the caller's own PostgreSQL transaction (``FlowProducer.add(...,
connection=)``)."""

from __future__ import annotations

import psycopg
import pytest

from dockyard import FlowProducer, Job, NotSupportedError, Queue, Worker

from ..waiting import wait_for

TREE = {
    "name": "ship", "queue": "orders", "data": {"order": 7},
    "children": [{"name": "pick", "queue": "picking", "data": {"item": i}} for i in range(3)],
}  # fmt: skip


def _conninfo(url: str) -> str:
    return url.split("?", 1)[0]


async def test_a_flow_added_in_a_committed_transaction_runs(postgres_url: str) -> None:
    done: list[int] = []

    async def pick(job: Job) -> int:
        return int(job.data["item"]) * 10

    async def ship(job: Job) -> None:
        done.extend(sorted((await job.get_children_values()).values()))

    async with (
        FlowProducer(url=postgres_url) as flows,
        Queue("orders", url=postgres_url) as orders,
        Worker("picking", pick, url=postgres_url),
        Worker("orders", ship, url=postgres_url),
    ):
        async with await psycopg.AsyncConnection.connect(_conninfo(postgres_url)) as conn:
            await conn.execute("CREATE TEMP TABLE shipments (id int)")
            node = await flows.add(TREE, connection=conn)
            await conn.execute("INSERT INTO shipments VALUES (7)")
            # Not committed: nobody else sees the tree.
            assert await orders.get_job(node.job.id) is None
            await conn.commit()
        await wait_for(lambda: done == [0, 10, 20], 10, "the parent to run after its children")


async def test_a_flow_added_in_a_rolled_back_transaction_never_existed(postgres_url: str) -> None:
    async with (
        FlowProducer(url=postgres_url) as flows,
        Queue("orders", url=postgres_url) as orders,
        Queue("picking", url=postgres_url) as picking,
    ):
        async with await psycopg.AsyncConnection.connect(_conninfo(postgres_url)) as conn:
            nodes = await flows.add_bulk([TREE, TREE], connection=conn)
            await conn.rollback()
        assert [await orders.get_job(n.job.id) for n in nodes] == [None, None]
        assert sum((await orders.get_job_counts()).values()) == 0
        assert sum((await picking.get_job_counts()).values()) == 0
        # The queues work on: the same tree without a connection.
        node = await flows.add(TREE)
        assert await node.job.get_state() == "waiting-children"


async def test_a_flow_attaching_to_an_existing_parent_is_refused(postgres_url: str) -> None:
    async with FlowProducer(url=postgres_url) as flows, Queue("orders", url=postgres_url) as q:
        parent = await flows.add(TREE)
        child = {"name": "late", "queue": "picking",
                 "opts": {"parent": {"id": parent.job.id, "queue": "bull:orders"}}}  # fmt: skip
        async with await psycopg.AsyncConnection.connect(_conninfo(postgres_url)) as conn:
            with pytest.raises(NotSupportedError, match="without connection="):
                await flows.add(child, connection=conn)
            # The caller's transaction is untouched and goes on.
            await conn.execute("SELECT 1")
            await conn.commit()
        stored = await q.get_job(parent.job.id)
        assert stored is not None
        assert (await stored.get_dependencies_count())["unprocessed"] == 3


async def test_a_flow_connection_on_another_store_is_refused() -> None:
    async with FlowProducer(url="memory://") as flows:
        with pytest.raises(NotSupportedError, match="postgresql"):
            await flows.add(TREE, connection=object())
