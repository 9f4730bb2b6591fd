"""Schema 7 (flows): a file written at version 5 opens, migrates, runs its old jobs, and
takes flows afterwards."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from dockyard import Job, Queue, WaitingChildrenError, Worker
from dockyard.backends.base import NewJob
from dockyard.backends.flowstore import FlowNode
from dockyard.backends.sqlite.schema import LATEST, migrate


def _file_at_version_5(path: str) -> None:
    """A file as dockyard with schema 5 left it: queue ``q`` with one waiting job ``old``."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path, target=5) == 5
    conn.execute("INSERT INTO queues (prefix, name, counter, seq) VALUES ('bull', 'q', 1, 1)")
    conn.execute(
        "INSERT INTO jobs (qid, id, name, data, opts, timestamp, state, score) VALUES "
        "(1, 'old', 'step', '{\"n\":1}', '{}', ?, 'wait', 1)",
        (int(time.time() * 1000),),
    )
    columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    assert "parent_id" not in columns
    conn.close()


async def test_a_version_5_file_migrates_and_its_old_job_becomes_a_parent(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    _file_at_version_5(path)
    url = f"sqlite:///{path}"
    async with Queue("q", url=url) as queue:
        old = await queue.get_job("old")
        assert old is not None and old.data == {"n": 1}
        assert await queue.get_job_counts("waiting", "waiting-children") == {
            "waiting": 1, "waiting-children": 0,
        }  # fmt: skip

        async def step(job: Job) -> object:
            if (await job.get_dependencies_count())["processed"] == 0:
                now = int(time.time() * 1000)
                kid = NewJob("kid", "{}", "{}", now, 0, 0, False, "kid")
                node = FlowNode(queue="k", job=kid, parent_id=job.id, parent_queue="q")
                await queue.backend.flows.add_flow([node])
                if await job.move_to_waiting_children():
                    raise WaitingChildrenError()
            return await job.get_children_values()

        async with Worker("q", step, url=url), Worker("k", lambda job: "kid done", url=url):
            assert await old.wait_until_finished(timeout=10) == {"bull:k:kid": "kid done"}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT max(version) FROM dockyard_schema").fetchone()[0] == LATEST == 7
    assert conn.execute("SELECT count(*) FROM dependencies").fetchone()[0] == 1
    conn.close()
