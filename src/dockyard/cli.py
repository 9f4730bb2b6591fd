"""The ``dockyard`` command (also ``python -m dockyard``).

Exit codes: 0 done; 1 the operation failed (no such job, a refused change, failed
demo); 2 bad usage or input (unknown option, bad JSON, bad MODULE:HANDLER); 3 the store
cannot be reached; 130 interrupted. User errors print one line, never a traceback
(cliout.py). Every command names the store it uses on stderr (not with ``--json``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ._storecheck import store_warnings
from .backends import DEFAULT_URL
from .backends.base import STATES
from .cliflows import flow, schedule, schedules
from .cliout import (
    EXIT_USAGE,
    UserError,
    announce_store,
    err,
    failure,
    out,
    store_line,
)
from .cliout import run as _run
from .cliviews import job_dict, read_stats, stats_table, watch_stats
from .cliviews import with_queue as _with_queue
from .durations import MAX_SECONDS
from .errors import InvalidOptionError
from .job import Job
from .options import MAX_PRIORITY
from .queue import Queue

T = TypeVar("T")
URL_HELP = f"Store URL (default: $DOCKYARD_URL, else {DEFAULT_URL})."


def say(text: str) -> None:
    """Print one plain line on stdout: names and ids are shown as given, never as markup."""
    out.print(text, markup=False, highlight=False)


def store_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--url``, ``--prefix`` and ``--json``, shared by the commands that read a store."""
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")(fn)
    fn = click.option("--prefix", default="bull", show_default=True, help="Key prefix.")(fn)
    return click.option("--url", envvar="DOCKYARD_URL", help=URL_HELP)(fn)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dockyard")
def main() -> None:
    """dockyard: durable jobs for Python, on Redis (BullMQ's data model), SQLite or memory."""


# -- worker -------------------------------------------------------------------------------


@main.command()
@click.argument("target", metavar="MODULE:HANDLER")
@click.option("-q", "--queue", required=True, help="Queue to work on.")
@click.option("-c", "--concurrency", default=1, show_default=True, type=click.IntRange(1))
@click.option("-p", "--processes", default=1, show_default=True, type=click.IntRange(1))
@click.option("--lock-duration", default=30.0, show_default=True,
              type=click.FloatRange(0.001, MAX_SECONDS))  # fmt: skip
@click.option("--stalled-interval", default=30.0, show_default=True,
              type=click.FloatRange(0.001, MAX_SECONDS))  # fmt: skip
@click.option("--max-stalled-count", default=1, show_default=True, type=click.IntRange(0))
@click.option("--shutdown-timeout", default=30.0, show_default=True,
              type=click.FloatRange(0, MAX_SECONDS))  # fmt: skip
@click.option("--max-jobs", type=click.IntRange(1), help="Recycle a process after N jobs.")
@click.option("--max-memory", type=click.IntRange(1), help="Recycle a process past N MB RSS.")
@click.option("--name", help="Worker name (shown to BullMQ's getWorkers).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info"
)
@click.option("--log-jobs", is_flag=True, help="One INFO line per finished job.")
@click.option("--isolate", is_flag=True, help="Run each job in a child process.")
@click.option("--url", envvar="DOCKYARD_URL", help=URL_HELP)
@click.option("--prefix", default="bull", show_default=True)
def worker(target: str, queue: str, processes: int, **opts: Any) -> None:
    """Run MODULE:HANDLER (a function, or a dict of job name -> function) on a queue."""
    from . import logs
    from .runworker import WorkerCommand, load_handler
    from .supervisor import CHILD_ENV

    logs.configure(opts.pop("log_level"), opts.pop("log_format"))
    command = WorkerCommand(target=target, queue=queue, processes=processes, **opts)
    try:
        load_handler(target)  # fail here, once, rather than in every child
    except InvalidOptionError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None
    if CHILD_ENV not in os.environ:  # a supervised child: its supervisor said it already
        logging.getLogger("dockyard.cli").info(store_line(opts["url"]))
    try:
        code = command.run()
    except Exception as exc:  # a store that refuses the worker outright: one line (#13)
        problem = failure(exc, opts["url"])
        if problem is None:
            raise
        raise problem from None
    if code:
        sys.exit(code)


# -- producing ----------------------------------------------------------------------------


@main.command()
@click.argument("queue")
@click.argument("name")
@click.option("--data", default="{}", help="Job data as JSON.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Add many jobs: JSON lines of {'name', 'data', 'opts'}.")  # fmt: skip
@click.option(
    "--delay", type=float, help=f"Seconds before the job may run: 0 .. {MAX_SECONDS} (ten years)."
)
@click.option("--attempts", type=int, help="Tries before the job fails for good: 1 or more.")
@click.option("--priority", type=int,
              help=f"1 (highest) .. {MAX_PRIORITY} (lowest); 0 = none.")  # fmt: skip
@click.option("--job-id", help="A custom id; adding an existing id adds nothing.")
@click.option("--lifo", is_flag=True, help="Run it before the jobs already waiting.")
@store_options
def add(queue: str, name: str, data: str, path: str | None, url: str | None, prefix: str,
        as_json: bool, **given: Any) -> None:  # fmt: skip
    """Add a job NAME to QUEUE (or many, from --file)."""
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise UserError(f"--data is not valid JSON ({exc}); e.g. --data '{{\"to\": \"a@b.c\"}}'",
                        EXIT_USAGE) from None  # fmt: skip
    # Only options given: `is not`, since 0 == False would drop --attempts 0 unchecked (#19).
    opts = {k: v for k, v in given.items() if v is not None and v is not False}
    announce_store(url, quiet=as_json)
    if path is not None:
        entries = _read_jobs_file(path, name)
        ids = _run(_with_queue(url, prefix, queue, lambda q: _add_many(q, entries, as_json)), url)
        if as_json:
            _print_json({"ids": ids})
        else:
            say(f"added {len(ids):,} jobs to {queue}")
        return

    async def one(q: Queue) -> Job:
        return await q.add(name, payload, **opts)

    job = _run(_with_queue(url, prefix, queue, one), url)
    if as_json:
        _print_json({"id": job.id})
    else:
        say(f"added job {job.id} ({name}) to {queue}")


def _read_jobs_file(path: str, default_name: str) -> list[tuple[str, Any, dict[str, Any]]]:
    entries: list[tuple[str, Any, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise UserError(f"{path}:{number}: not JSON ({exc})", EXIT_USAGE) from None
            if not isinstance(entry, dict):
                raise UserError(f"{path}:{number}: each line must be a JSON object", EXIT_USAGE)
            opts = entry.get("opts") or {}
            if not isinstance(opts, dict):
                raise UserError(f"{path}:{number}: 'opts' must be an object", EXIT_USAGE)
            entries.append((str(entry.get("name", default_name)), entry.get("data"), opts))
    return entries


async def _add_many(
    queue: Queue, entries: list[tuple[str, Any, dict[str, Any]]], quiet: bool
) -> list[str]:
    ids: list[str] = []
    with Progress(console=err, transient=True, disable=quiet) as progress:
        task = progress.add_task("adding", total=len(entries))
        for start in range(0, len(entries), 1000):
            batch = entries[start : start + 1000]
            ids += [job.id for job in await queue.add_bulk(batch)]
            progress.advance(task, len(batch))
    return ids


# -- reading ------------------------------------------------------------------------------


@main.command()
@click.argument("queues", nargs=-1)
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.1))
@store_options
def stats(queues: tuple[str, ...], watch: bool, interval: float, url: str | None, prefix: str,
          as_json: bool) -> None:  # fmt: skip
    """Job counts per state of QUEUES (every queue of the store when none is named)."""
    announce_store(url, quiet=as_json)
    if not watch:
        result = _run(read_stats(url, prefix, queues), url)
        warnings = _run(store_warnings(url, prefix), url)
        if as_json:  # stdout stays the counts alone
            _print_json(result)
            for line in warnings:
                click.echo(f"warning: {line}", err=True)
        else:
            out.print(stats_table(result, warnings=warnings))
        return
    _run(watch_stats(url, prefix, queues, interval), url)


@main.command()
@click.argument("queue")
@click.option("--state", default="waiting", show_default=True, type=click.Choice(STATES))
@click.option(
    "--start",
    default=0,
    show_default=True,
    type=int,
    help="First position (0 = newest); negative counts from the oldest.",
)
@click.option("--end", default=19, show_default=True, type=int,
              help="Last position, included; at most 10,000 from --start.")  # fmt: skip
@store_options
def jobs(queue: str, state: str, start: int, end: int, url: str | None, prefix: str,
         as_json: bool) -> None:  # fmt: skip
    """List jobs of QUEUE in one state, newest first (a page: --start/--end)."""
    announce_store(url, quiet=as_json)
    found = _run(_with_queue(url, prefix, queue, lambda q: q.get_jobs(state, start, end)), url)
    if as_json:
        _print_json([job_dict(j, state) for j in found])
        return
    table = Table(title=f"{escape(queue)}: {state} jobs {start}..{end}")
    for column in ("id", "name", "attempts", "progress", "result / reason"):
        table.add_column(column, min_width=len(column) if column != "result / reason" else None)
    for j in found:
        outcome = j.failed_reason if j.failed_reason else json.dumps(j.return_value, default=str)
        cells = (j.id, j.name, str(j.attempts_made), str(j.progress), outcome or "")
        table.add_row(*(escape(cell) for cell in cells))
    out.print(table)


@main.command()
@click.argument("queue")
@click.argument("job_id")
@store_options
def job(queue: str, job_id: str, url: str | None, prefix: str, as_json: bool) -> None:
    """Show one job: state, progress, logs, return value or failure."""
    announce_store(url, quiet=as_json)

    async def read(q: Queue) -> dict[str, Any]:
        found = await q.get_job(job_id)
        if found is None:
            raise UserError(f"no job {job_id} in queue {queue}")
        return job_dict(found, await found.get_state(), await q.get_job_logs(job_id))

    entry = _run(_with_queue(url, prefix, queue, read), url)
    if as_json:
        _print_json(entry)
        return
    for key in ("id", "name", "state", "progress", "attempts_made", "data", "return_value",
                "failed_reason"):  # fmt: skip
        if entry.get(key) is not None:
            value = escape(json.dumps(entry[key], default=str))
            out.print(f"[bold]{key:>14}[/bold]  {value}", highlight=False)
    for line in entry["logs"]:
        out.print(f"[dim]{'log':>14}[/dim]  {escape(line)}", highlight=False)
    for trace in entry["stacktrace"][-1:]:
        say(trace)


# -- admin --------------------------------------------------------------------------------


@main.command()
@click.argument("queue")
@click.option("--state", default="failed", show_default=True,
              type=click.Choice(["failed", "completed"]))  # fmt: skip
@click.option("--count", type=click.IntRange(1), help="At most this many.")
@click.option("--from-dlq", is_flag=True,
              help="QUEUE is a dead-letter queue: send its jobs back.")  # fmt: skip
@store_options
def retry(queue: str, state: str, count: int | None, from_dlq: bool, url: str | None,
          prefix: str, as_json: bool) -> None:  # fmt: skip
    """Move failed (or completed) jobs of QUEUE back to waiting."""
    announce_store(url, quiet=as_json)
    if from_dlq:
        moved = _run(_with_queue(url, prefix, queue,
                                 lambda q: q.redrive_dead_letters(count=count)), url)  # fmt: skip
        if as_json:
            _print_json({"moved": moved})
        else:
            say(f"sent {moved:,} dead letter(s) of {queue} back to their queues")
        return

    async def move(q: Queue) -> int:
        total = (await q.get_job_counts(state))[state]
        total = min(total, count) if count else total
        moved = 0
        with Progress(console=err, transient=True, disable=as_json) as progress:
            task = progress.add_task(f"retrying {state}", total=total)
            while moved < total:
                step = await q.retry_jobs(state=state, count=min(1000, total - moved))
                if step == 0:
                    break
                moved += step
                progress.advance(task, step)
        return moved

    moved = _run(_with_queue(url, prefix, queue, move), url)
    if as_json:
        _print_json({"moved": moved})
    else:
        say(f"moved {moved:,} {state} job(s) of {queue} back to waiting")


@main.command()
@click.argument("queue")
@store_options
def pause(queue: str, url: str | None, prefix: str, as_json: bool) -> None:
    """Pause QUEUE: workers (dockyard's and Node's) take no new jobs."""
    announce_store(url, quiet=as_json)
    _run(_with_queue(url, prefix, queue, lambda q: q.pause()), url)
    _print_json({"paused": True}) if as_json else say(f"{queue} paused")


@main.command()
@click.argument("queue")
@store_options
def resume(queue: str, url: str | None, prefix: str, as_json: bool) -> None:
    """Resume a paused QUEUE."""
    announce_store(url, quiet=as_json)
    _run(_with_queue(url, prefix, queue, lambda q: q.resume()), url)
    _print_json({"paused": False}) if as_json else say(f"{queue} resumed")


@main.command()
@click.argument("queue")
@click.option("--grace", default=0.0, show_default=True, type=float,
              help="Only jobs older than this many seconds (0 or more).")  # fmt: skip
@click.option("--limit", default=0, show_default=True, type=int,
              help="At most N jobs (0 or more); 0 = all.")  # fmt: skip
@click.option("--state", default="completed", show_default=True,
              type=click.Choice(["completed", "failed", "delayed", "prioritized", "waiting",
                                 "paused", "active"]))  # fmt: skip
@store_options
def clean(queue: str, grace: float, limit: int, state: str, url: str | None, prefix: str,
          as_json: bool) -> None:  # fmt: skip
    """Delete jobs of QUEUE in one state, older than --grace seconds."""
    announce_store(url, quiet=as_json)

    async def sweep(q: Queue) -> list[str]:
        removed: list[str] = []
        total = (await q.get_job_counts(state))[state]
        total = min(total, limit) if limit else total
        with Progress(console=err, transient=True, disable=as_json) as progress:
            task = progress.add_task(f"cleaning {state}", total=total)
            while len(removed) < total:
                step = await q.clean(grace, min(1000, total - len(removed)), state)
                if not step:
                    break
                removed += step
                progress.advance(task, len(step))
        return removed

    removed = _run(_with_queue(url, prefix, queue, sweep), url)
    if as_json:
        _print_json({"removed": removed})
    else:
        say(f"removed {len(removed):,} {state} job(s) of {queue}")


@main.command()
@click.argument("queue")
@click.option("--delayed", is_flag=True, help="Also delete delayed jobs.")
@store_options
def drain(queue: str, delayed: bool, url: str | None, prefix: str, as_json: bool) -> None:
    """Delete every job of QUEUE that waits to run."""
    announce_store(url, quiet=as_json)
    removed = _run(_with_queue(url, prefix, queue, lambda q: q.drain(delayed=delayed)), url)
    if as_json:
        _print_json({"removed": removed})
    else:
        say(f"removed {removed:,} waiting job(s) of {queue}")


# -- demo and serve -----------------------------------------------------------------------


@main.command()
@click.option("--url", envvar="DOCKYARD_URL", help=URL_HELP)
def demo(url: str | None) -> None:
    """A short end-to-end run on the default store (an SQLite file: no server needed)."""
    from .demo import run_demo

    announce_store(url)
    code = _run(run_demo(url, echo=say), url)
    if code:
        sys.exit(code)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--url", envvar="DOCKYARD_URL", help=URL_HELP)
@click.option("--prefix", default="bull", show_default=True)
@click.option("--token", envvar="DOCKYARD_API_TOKEN", help="Bearer token for the API.")
@click.option("--queue", "queues", multiple=True,
              help="Serve only these queues (default: every queue in the store).")  # fmt: skip
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="Also answer to this Host name (name or name:port; default: the --host "
                   "address and loopback names).")  # fmt: skip
@click.option("--read-only", is_flag=True,
              help="Refuse every change (403); the dashboard only shows.")  # fmt: skip
def serve(host: str, port: int, url: str | None, prefix: str, token: str | None,
          queues: tuple[str, ...], allowed_hosts: tuple[str, ...],
          read_only: bool) -> None:  # fmt: skip
    """The HTTP API and web dashboard."""
    try:
        run_server = importlib.import_module("dockyard.web.serve").run
    except ImportError as exc:
        raise UserError(
            f"the web app needs its extra: pip install 'dockyard[web]' ({exc})", EXIT_USAGE
        ) from None
    announce_store(url)
    code = run_server(url=url, host=host, port=port, token=token, prefix=prefix,
                      queues=list(queues) or None,
                      allowed_hosts=list(allowed_hosts) or None,
                      read_only=read_only)  # fmt: skip
    if code:
        sys.exit(code)


for _command in (flow, schedule, schedules):  # in cliflows.py
    main.add_command(_command)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m dockyard``: the exit code instead of SystemExit."""
    try:
        main.main(args=list(argv) if argv is not None else None, prog_name="dockyard")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
