"""Writing in the caller's own transaction (``connection=``): ``add``, ``add_bulk`` and
``FlowProducer.add``/``add_bulk`` on PostgreSQL.

The statements run on the caller's psycopg connection, inside their open transaction
(under a savepoint, so a refused write leaves the rest of it as it was), or in one of
ours when an autocommit connection has none open: rolled back, the jobs never existed;
committed, the waiters of every queue written are notified then. Nothing here takes a
lock: ids and order come from sequences and the rows are new, so the caller's
transaction holds nothing a worker waits for, however long it stays open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import pq

from ...errors import BackendError, InvalidOptionError, NotSupportedError
from ..base import NewJob
from ..flowstore import FlowNode
from ..sqlite import flows
from .dialect import PgConn
from .failures import nul_refused, refusal
from .store import PgQueueStore

if TYPE_CHECKING:
    from .backend import PostgresBackend

T = TypeVar("T")
_SAVEPOINT = "dockyard_add"


async def add_jobs(backend: PostgresBackend, connection: Any, jobs: Sequence[NewJob]) -> list[str]:
    """``add``/``add_bulk`` in the caller's transaction; the ids."""
    now = int(time.time() * 1000)
    return await _in_caller_tx(backend, connection, lambda s: [s.add(job, now) for job in jobs])


async def add_flow(
    backend: PostgresBackend, connection: Any, nodes: Sequence[FlowNode]
) -> list[str]:
    """Whole new trees in the caller's transaction; the ids in ``nodes`` order. A tree
    whose root attaches to a parent outside it is refused: moving that parent needs
    its queue's lock, which no caller's transaction should hold."""
    inside: set[tuple[str, str]] = set()
    for node in nodes:
        if not isinstance(node, FlowNode):
            raise InvalidOptionError(f"add_flow takes FlowNode objects, got {node!r}")
        parent = (node.parent_queue or node.queue, node.parent_id or "")
        if node.parent_id is not None and parent not in inside:
            raise NotSupportedError(
                f"a flow whose root attaches to the existing job {node.parent_id!r} (opts "
                "'parent') cannot be added in your transaction (connection=): add it "
                "without connection=. Nothing was written."
            )
        if node.job.job_id:
            inside.add((node.queue, node.job.job_id))
    now = int(time.time() * 1000)
    names = sorted({node.queue for node in nodes} - {backend.queue})
    return await _in_caller_tx(
        backend, connection, lambda s: flows.add_flow(s, nodes, now), queues=names
    )


async def _in_caller_tx(
    backend: PostgresBackend,
    connection: Any,
    write: Callable[[PgQueueStore], T],
    queues: Sequence[str] = (),
) -> T:
    if not isinstance(connection, psycopg.Connection | psycopg.AsyncConnection):
        raise InvalidOptionError(
            "connection= takes a psycopg (3) Connection or AsyncConnection, got "
            f"{type(connection).__name__}"
        )
    # The schema, and every queue written (this one and ``queues``) with its row and id
    # sequence, made first in a transaction of ours: made in the caller's, they would hold
    # up other creators until it ends.
    if queues:
        await backend._run(lambda s: [flows.peer_named(s, name) for name in queues])
    else:
        await backend._run(lambda s: None, write=False)
    loop = asyncio.get_running_loop()
    is_async = isinstance(connection, psycopg.AsyncConnection)
    own = connection.autocommit and connection.info.transaction_status == pq.TransactionStatus.IDLE

    def run() -> T:
        pg = PgConn(connection, backend.schema, {}, loop if is_async else None, caller_tx=True)
        pg.run_plain("BEGIN" if own else f"SAVEPOINT {_SAVEPOINT}")
        try:
            store = PgQueueStore.on(pg, backend.prefix, backend.queue)
            out = write(store)
            store.notify_in_tx(*store.peers)
        except BaseException:
            pg.run_plain(
                "ROLLBACK"
                if own
                else f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
            )
            raise
        pg.run_plain("COMMIT" if own else f"RELEASE SAVEPOINT {_SAVEPOINT}")
        return out

    try:
        return await asyncio.to_thread(run)
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
            raise nul_refused() from None
        refused = refusal(exc, backend._where)
        raise refused or BackendError(
            f"adding in the caller's transaction failed: {str(exc).strip()}"
        ) from None
