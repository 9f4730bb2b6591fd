"""Workload P of bench/run.py: the PostgreSQL queues side by side on one private server.

Each system, in a fresh empty database: a producer process bulk-adds N no-op jobs
(batches of 1,000, timed after its schema is made), then one worker process at
concurrency 50 runs them, timed from the first job's start to the last job's end inside
the worker. Ratios are to Node BullMQ 6.7.0 on its own PostgreSQL backend in the same run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
CONCURRENCY = 50
DATABASE = "bench"
BASE = "bullmq-node-6-pg"


@dataclass(frozen=True)
class PgSystem:
    """One queue on PostgreSQL: its peer and what it is set to."""

    name: str
    title: str
    settings: str
    peer: str  # a file under bench/peers (Python) or bench/node (.mjs)

    def command(self, spec: dict[str, Any]) -> list[str]:
        if self.peer.endswith(".mjs"):
            return ["node", str(BENCH / "node" / self.peer), json.dumps(spec)]
        return [sys.executable, str(BENCH / "peers" / self.peer), json.dumps(spec)]


PG_SYSTEMS = {
    s.name: s
    for s in [
        PgSystem(
            "dockyard-pg",
            "dockyard on postgresql:// (this tree)",
            "Queue.add_bulk; Worker(q, fn, url='postgresql://...', concurrency=50), asyncio "
            "loop, psycopg 3 (binary)",
            "pg_dockyard_peer.py",
        ),
        PgSystem(
            BASE,
            "BullMQ (Node) 6.7.0 on PostgreSQL",
            "withBackend(createPostgresBackend), connection {connectionString, migrate: true}; "
            "Queue.addBulk; new Worker(q, fn, {connection, concurrency: 50}); pg 8.23.1; Node 20",
            "bullmq_pg_peer.mjs",
        ),
        PgSystem(
            "procrastinate",
            "procrastinate 3.10.0",
            "PsycopgConnector; task.batch_defer_async; app.run_worker_async(concurrency=50), "
            "LISTEN/NOTIFY on (default)",
            "procrastinate_peer.py",
        ),
    ]
}

Runner = Callable[[Any, dict[str, Any], float], dict[str, Any]]


def fresh_database(admin_url: str) -> None:
    """Drop and make the database ``bench``: every measurement starts from nothing."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def measure(system: PgSystem, server: Any, n: int, run_once: Runner) -> dict[str, Any]:
    """One run of workload P for one system (``server``: a dockyard.devserver.PostgresServer)."""
    fresh_database(server.url("postgres"))
    url = server.url(DATABASE)
    added = run_once(system, {"role": "enqueue", "url": url, "n": n}, 300)
    spawned = time.time()
    spec = {"role": "work", "url": url, "n": n, "concurrency": CONCURRENCY}
    out = run_once(system, spec, 60 + n / 20)
    took = (out["last_ms"] - out["first_ms"]) / 1000
    return {
        "jobs": n,
        "bulk_per_s": round(n / added["seconds"], 1),
        "jobs_per_s": round(n / took, 1) if took > 0 else 0.0,
        "spawn_to_done_s": round(out["last_ms"] / 1000 - spawned, 2),
    }


def add_ratios(summary: dict[str, Any]) -> None:
    """``ratio_to_node_pg`` beside each P median: this system's / Node BullMQ 6.7.0 on PG's."""
    base = summary.get(BASE, {}).get("P", {})
    for name, workloads in summary.items():
        if name == BASE or "P" not in workloads:
            continue
        for key, value in workloads["P"].items():
            ref = base.get(key)
            if isinstance(value, dict) and isinstance(ref, dict) and ref.get("median"):
                value["ratio_to_node_pg"] = round(value["median"] / ref["median"], 2)


def _cell(node: Any, digits: int = 0) -> str:
    if not isinstance(node, dict) or "median" not in node:
        return "-"
    text = f"{node['median']:,.{digits}f}"
    if node["runs"] > 1:
        text += f" ({node['min']:,.{digits}f}-{node['max']:,.{digits}f})"
    if "ratio_to_node_pg" in node:
        text += f" **{node['ratio_to_node_pg']:.2f}x**"
    return text


def report(summary: dict[str, Any], table: Callable[[list[str], list[list[str]]], str]) -> str:
    """The P table in Markdown (empty when no system ran P)."""
    names = [s for s in PG_SYSTEMS if "P" in summary.get(s, {})]
    if not names:
        return ""
    rows = [
        [
            PG_SYSTEMS[s].title,
            _cell(summary[s]["P"].get("bulk_per_s")),
            _cell(summary[s]["P"].get("jobs_per_s")),
            _cell(summary[s]["P"].get("spawn_to_done_s"), 1),
        ]
        for s in names
    ]
    head = ["system", "bulk add, jobs/s", "processing, jobs/s", "spawn->done s"]
    return "\n".join(
        [
            "### P. PostgreSQL: N jobs bulk-added, then 1 process at concurrency 50",
            "",
            table(head, rows),
            "",
            "Ratio (**x**) = this system / Node BullMQ 6.7.0 on its PostgreSQL backend in the "
            "same run. One private PostgreSQL server (fsync off), a fresh database per "
            "measurement.",
            "",
        ]
    )
