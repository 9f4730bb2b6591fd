"""What the reading commands of ``dockyard`` show: a queue opened for one command, a job as
a dict, and the counts table of ``stats`` (with its ``--watch``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ._storecheck import store_warnings
from .backends import list_queues, open_backend
from .cliout import EXIT_USAGE, failure, out
from .job import Job
from .queue import Queue

T = TypeVar("T")


async def with_queue(
    url: str | None, prefix: str, name: str, action: Callable[[Queue], Awaitable[T]]
) -> T:
    """Open ``name`` with a short reconnect window (a command should fail fast)."""
    backend = open_backend(url, name, prefix=prefix, retry_for=3.0)
    async with Queue(name, prefix=prefix, backend=backend) as queue:
        return await action(queue)


def job_dict(
    job: Job, state: str | None = None, logs: Sequence[str] | None = None
) -> dict[str, Any]:
    """The job as ``--json`` prints it (with its logs and stack traces for ``job``)."""
    entry: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "state": state,
        "data": job.data,
        "progress": job.progress,
        "attempts_made": job.attempts_made,
        "attempts_started": job.attempts_started,
        "return_value": job.return_value,
        "failed_reason": job.failed_reason,
        "timestamp": job.timestamp,
        "processed_on": job.processed_on,
        "finished_on": job.finished_on,
        "delay": job.delay,
        "priority": job.priority,
    }
    if logs is not None:
        entry["logs"] = list(logs)
        entry["stacktrace"] = job.stacktrace
    return entry


STAT_COLUMNS = ("waiting", "active", "delayed", "prioritized", "completed", "failed", "paused")


async def read_stats(
    url: str | None, prefix: str, names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Counts per state and paused flag of each queue named (of every queue if none)."""
    wanted = list(names) or await list_queues(url, prefix)
    result: dict[str, dict[str, Any]] = {}
    for name in wanted:

        async def read(q: Queue) -> dict[str, Any]:
            counts: dict[str, Any] = await q.get_job_counts(*STAT_COLUMNS)
            counts["is_paused"] = await q.is_paused()
            return counts

        result[name] = await with_queue(url, prefix, name, read)
    return result


def stats_table(
    stats: dict[str, dict[str, Any]], trouble: str | None = None, warnings: Sequence[str] = ()
) -> RenderableType:
    """Counts per queue; with ``trouble``, the last counts read, marked disconnected, and
    the reason on a line of its own below (never squeezed to the table's width); then the
    store's start-up ``warnings`` (e.g. an eviction policy that can lose jobs)."""
    notes = [Text(f"warning: {line}", style="yellow") for line in warnings]
    title = f"dockyard queues  {time.strftime('%H:%M:%S')}"
    if trouble is not None:
        title += "  [bold red]disconnected[/bold red]"
    table = Table(title=title, show_edge=False)  # without edges, it fits 80 columns
    table.add_column("queue", overflow="fold", min_width=5)
    for column in STAT_COLUMNS:  # headers are never cut short (field report #25)
        table.add_column(column, justify="right", min_width=len(column), no_wrap=True)
    for name, counts in stats.items():
        label = escape(name) + (" [yellow](paused)[/yellow]" if counts["is_paused"] else "")
        table.add_row(label, *(f"{counts[c]:,}" for c in STAT_COLUMNS))
    if trouble is not None:
        shown = "; showing the last counts read" if stats else ""
        problem = Text(f"disconnected: {trouble}; retrying{shown}", style="red")
        return Group(table, problem, *notes)
    if not stats:
        table.caption = "no queues in this store"
    return Group(table, *notes) if notes else table


async def watch_stats(url: str | None, prefix: str, queues: Sequence[str], interval: float) -> None:
    """Refresh the counts until interrupted; an outage shows as "disconnected" and the
    watch goes on (field report #22). Off a terminal, each refresh is a new table."""
    last: dict[str, dict[str, Any]] = {}
    warnings: list[str] | None = None

    async def table() -> RenderableType:
        nonlocal warnings
        nonlocal last
        try:
            last = await read_stats(url, prefix, queues)
        except Exception as exc:  # the store's trouble shows in the table; bugs do not
            problem = failure(exc, url)
            if problem is None or problem.exit_code == EXIT_USAGE:
                raise
            return stats_table(last, problem.message, warnings or ())
        if warnings is None:  # checked once, at the first read that reaches the store
            warnings = await store_warnings(url, prefix)
        return stats_table(last, warnings=warnings)

    if not out.is_terminal:
        while True:
            out.print(await table())
            await asyncio.sleep(interval)
    with Live(stats_table({}), console=out, auto_refresh=False) as screen:
        while True:
            screen.update(await table(), refresh=True)
            await asyncio.sleep(interval)
