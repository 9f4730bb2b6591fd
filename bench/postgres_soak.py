"""A long run of the postgresql:// store on a private server: a producer adds jobs without
pause while one worker (concurrency 50, retention on) runs them; every minute it prints
the jobs added and processed, the time of ``get_job_counts()`` and of a page of 20
completed jobs, and per table its size, live and dead tuples, autovacuum runs and the
share of HOT updates (pg_stat_user_tables): whether bloat slows the queue down, and what
autovacuum keeps up with. Asserts nothing.

Usage: ``python bench/postgres_soak.py [--minutes 60] [--rate 2000] [--keep 10000]
[--autovacuum name=value ...]`` (rate: jobs/s the producer aims at, in bulks of 100;
keep: ``remove_on_complete`` count; ``--autovacuum`` adds server settings, e.g.
``autovacuum_vacuum_cost_limit=2000``). Producer and worker share one process.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any

import psycopg

from dockyard import Job, Queue, Worker
from dockyard.devserver import PostgresServer

SCHEMA = "soak"
TABLES = ("jobs", "events", "state_counts", "queues", "logs")


def table_stats(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT relname, pg_total_relation_size(relid), n_live_tup, n_dead_tup, "
            "autovacuum_count, autoanalyze_count, n_tup_upd, n_tup_hot_upd "
            "FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND relname = ANY(%s) ORDER BY relname",
            (SCHEMA, list(TABLES)),
        ).fetchall()


async def produce(queue: Queue, rate: float, added: list[int], stop: asyncio.Event) -> None:
    """Bulks of 100 at ``rate`` jobs/s (as fast as it can when it falls behind)."""
    t0 = time.monotonic()
    while not stop.is_set():
        await queue.add_bulk([("noop", {"i": added[0] + i}) for i in range(100)])
        added[0] += 100
        ahead = t0 + added[0] / rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)


async def main(a: argparse.Namespace, server: PostgresServer) -> None:
    url = server.url(schema=SCHEMA)
    admin = server.url()
    processed = [0]

    async def noop(job: Job) -> None:
        processed[0] += 1

    async with Queue("soak", url=url) as queue:
        await queue.add("warm", {})
        worker = Worker("soak", noop, url=url, concurrency=50, remove_on_complete={"count": a.keep})
        runner = asyncio.create_task(worker.run(handle_signals=False))
        added = [0]
        stop = asyncio.Event()
        producer = asyncio.create_task(produce(queue, a.rate, added, stop))
        print(
            f"soak: {a.minutes} min, producer {a.rate:,.0f} jobs/s, keep {a.keep:,} "
            f"completed, server settings {a.autovacuum or 'default'}",
            flush=True,
        )
        last_added = last_done = 0
        for minute in range(1, a.minutes + 1):
            await asyncio.sleep(60)
            t0 = time.perf_counter()
            counts = await queue.get_job_counts()
            counts_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            await queue.get_jobs("completed", 0, 19)
            page_ms = (time.perf_counter() - t0) * 1000
            done, made = processed[0], added[0]
            print(
                f"[{minute:3d} min] added {(made - last_added) / 60:7,.0f}/s, processed "
                f"{(done - last_done) / 60:7,.0f}/s; waiting {counts['waiting']:,}, "
                f"completed {counts['completed']:,}; counts {counts_ms:.1f} ms, "
                f"page {page_ms:.1f} ms",
                flush=True,
            )
            for name, size, live, dead, av, aa, upd, hot in table_stats(admin):
                print(
                    f"        {name:<13} {size / 2**20:8.1f} MB  live {live:>9,}  "
                    f"dead {dead:>9,}  autovacuum {av:>3}  autoanalyze {aa:>3}  "
                    f"HOT updates {hot / upd if upd else 0:4.0%}",
                    flush=True,
                )
            last_added, last_done = made, done
        stop.set()
        await producer
        await worker.close()
        await runner


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--keep", type=int, default=10_000)
    parser.add_argument("--autovacuum", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # our server stops on SIGTERM
    with PostgresServer(settings=args.autovacuum) as pg:
        asyncio.run(main(args, pg))
