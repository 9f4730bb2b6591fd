"""The ``dockyard`` commands for flows and job schedulers: ``flow``, ``schedules`` and
``schedule add|remove`` (registered on the main group by cli.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from .backends import DEFAULT_URL, Backend, list_queues, open_backend
from .cliout import EXIT_USAGE, UserError, announce_store, out
from .cliout import run as _run
from .cliviews import with_queue
from .errors import NotSupportedError
from .flow import FlowProducer
from .flowviews import not_supported, scheduler_dict, tree_dict
from .queue import Queue

#: Colours of the states in ``dockyard flow``'s tree.
STATE_STYLES = {
    "completed": "green",
    "failed": "red",
    "active": "cyan",
    "waiting-children": "magenta",
    "delayed": "yellow",
}


def store_options(fn: Any) -> Any:
    """``--url``, ``--prefix`` and ``--json``, as the other commands take them."""
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")(fn)
    fn = click.option("--prefix", default="bull", show_default=True, help="Key prefix.")(fn)
    url_help = f"Store URL (default: $DOCKYARD_URL, else {DEFAULT_URL})."
    return click.option("--url", envvar="DOCKYARD_URL", help=url_help)(fn)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


class _QuickFlows(FlowProducer):
    """A FlowProducer whose connections give up after 3 s: a command should fail fast."""

    def _open(self, name: str) -> Backend:
        return open_backend(self.url, name, prefix=self.prefix, retry_for=3.0)


def _label(node: dict[str, Any]) -> str:
    """One line of the tree: name, queue:id and state, names escaped (never markup)."""
    style = STATE_STYLES.get(node["state"], "default")
    where = escape(f"{node['queue']}:{node['id']}")
    return f"[bold]{escape(node['name'])}[/bold] [dim]{where}[/dim] [{style}]{node['state']}[/]"


def flow_tree(root: dict[str, Any]) -> Tree:
    """The rich Tree of a flow as ``tree_dict`` answers it (its parent on top, if any)."""
    tree = Tree(_label(root))
    todo = [(tree, child) for child in root["children"]]
    while todo:
        branch, node = todo.pop(0)
        twig = branch.add(_label(node))
        todo.extend((twig, child) for child in node["children"])
    if root.get("parent"):
        parent = root["parent"]
        top = Tree(f"[dim]parent {escape(parent['queue'] + ':' + parent['id'])}[/dim]")
        top.add(tree)
        return top
    return tree


@click.command()
@click.argument("queue")
@click.argument("job_id", metavar="ID")
@click.option("--depth", default=10, show_default=True, type=click.IntRange(1, 100),
              help="Levels to show (1: the job alone).")  # fmt: skip
@store_options
def flow(queue: str, job_id: str, depth: int, url: str | None, prefix: str,
         as_json: bool) -> None:  # fmt: skip
    """Show the flow below job ID of QUEUE: each job's children and state."""
    announce_store(url, quiet=as_json)

    async def read() -> dict[str, Any]:
        async with _QuickFlows(url=url, prefix=prefix) as flows:
            try:
                node = await flows.get_flow(queue, job_id, depth=depth)
                if node is None:
                    raise UserError(f"no job {job_id} in queue {queue}")
                return await tree_dict(node)
            except NotSupportedError:  # SQLite and memory, until they keep flows
                raise UserError(not_supported("flows (parent/child jobs)", url)) from None

    root = _run(read(), url)
    if as_json:
        _print_json(root)
    else:
        out.print(flow_tree(root), highlight=False)



# -- job schedulers -------------------------------------------------------------------------


def _relative(seconds: float) -> str:
    """``in 5m`` / ``3h ago``: how far ``seconds`` (a delta) is from now, roughly."""
    ahead, left = seconds >= 0, abs(seconds)
    if left < 1:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            text = f"{int(left // size)}{unit}"
            break
    else:
        text = f"{int(left)}s"
    return f"in {text}" if ahead else f"{text} ago"


def when_text(at: float | None, now: float) -> str:
    """A next run as ``2025-01-02 03:04:05 UTC (in 5m)``; ``-`` when there is none."""
    if at is None:
        return "-"
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({_relative(at - now)})"


def every_text(entry: dict[str, Any]) -> str:
    """``every 30s`` or the cron pattern."""
    if entry["pattern"] is not None:
        return str(entry["pattern"])
    return f"every {entry['every']:g}s" if entry["every"] is not None else "-"


async def _read_schedulers(url: str | None, prefix: str,
                           names: Sequence[str]) -> list[dict[str, Any]]:  # fmt: skip
    wanted = list(names) or await list_queues(url, prefix)
    found: list[dict[str, Any]] = []
    for name in wanted:

        async def read(q: Queue) -> list[dict[str, Any]]:
            return [scheduler_dict(q.name, s) for s in await q.get_job_schedulers(asc=True)]

        found += await with_queue(url, prefix, name, read)
    return found


@click.command()
@click.argument("queues", nargs=-1)
@store_options
def schedules(queues: tuple[str, ...], url: str | None, prefix: str, as_json: bool) -> None:
    """The job schedulers of QUEUES (of every queue when none is named), soonest first."""
    announce_store(url, quiet=as_json)
    found = _run(_read_schedulers(url, prefix, queues), url)
    if as_json:
        _print_json(found)
        return
    table = Table(title="job schedulers", show_edge=False)
    for column in ("queue", "id", "pattern / every", "tz", "next run", "iterations", "limit"):
        table.add_column(column, min_width=len(column), overflow="fold")
    now = time.time()
    for s in found:
        cells = (s["queue"], s["id"], every_text(s), s["tz"] or "-", when_text(s["next_run"], now),
                 str(s["iterations"]), "-" if s["limit"] is None else str(s["limit"]))  # fmt: skip
        table.add_row(*(escape(cell) for cell in cells))
    if not found:
        table.caption = "no job schedulers"
    out.print(table)


@click.group()
def schedule() -> None:
    """Add (or replace) and remove job schedulers."""


def _json_option(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UserError(f"{option} is not valid JSON ({exc})", EXIT_USAGE) from None


def _moment(text: str | None, option: str) -> float | None:
    """``--start``/``--end``: epoch seconds, or an ISO 8601 date-time (UTC if no offset)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option} takes epoch seconds or an ISO 8601 date-time such as "
            f"2030-01-31T09:00:00+01:00, got {text!r}",
            EXIT_USAGE,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@schedule.command("add")
@click.argument("queue")
@click.argument("scheduler_id", metavar="ID")
@click.option("--every", type=float, help="Run every S seconds.")
@click.option("--cron", "pattern", help="Run at the times of a cron PATTERN.")
@click.option("--tz", help="Time zone of --cron (default UTC), e.g. Europe/Paris.")
@click.option("--start", help="Not before: epoch seconds or an ISO 8601 date-time.")
@click.option("--end", help="Not after: epoch seconds or an ISO 8601 date-time.")
@click.option("--limit", type=int, help="At most N runs.")
@click.option("--immediately", is_flag=True, help="First run now (with --cron).")
@click.option("--name", help="Name of the jobs it makes.")
@click.option("--data", help="Data of the jobs it makes, as JSON.")
@click.option("--opts", help="Options of the jobs it makes, as a JSON object.")
@store_options
def schedule_add(queue: str, scheduler_id: str, every: float | None, pattern: str | None,
                 tz: str | None, start: str | None, end: str | None, limit: int | None,
                 immediately: bool, name: str | None, data: str | None, opts: str | None,
                 url: str | None, prefix: str, as_json: bool) -> None:  # fmt: skip
    """Add the scheduler ID to QUEUE, or replace it: --every S or --cron PATTERN."""
    if (every is None) == (pattern is None):
        raise UserError("give exactly one of --every SECONDS and --cron PATTERN", EXIT_USAGE)
    template: dict[str, Any] = {}
    if name is not None:
        template["name"] = name
    if data is not None:
        template["data"] = _json_option(data, "--data")
    if opts is not None:
        template["opts"] = _json_option(opts, "--opts")
        if not isinstance(template["opts"], dict):
            raise UserError("--opts must be a JSON object, e.g. '{\"attempts\": 3}'", EXIT_USAGE)
    begin, stop = _moment(start, "--start"), _moment(end, "--end")
    announce_store(url, quiet=as_json)

    async def upsert(q: Queue) -> dict[str, Any]:
        job = await q.upsert_job_scheduler(
            scheduler_id, every=every, pattern=pattern, tz=tz, start=begin, end=stop,
            limit=limit, immediately=immediately, template=template or None,
        )  # fmt: skip
        found = await q.get_job_scheduler(scheduler_id)
        if found is None:  # removed again by someone else in between
            raise UserError(f"scheduler {scheduler_id} of {queue} was removed meanwhile")
        return {**scheduler_dict(q.name, found), "job_id": job.id}

    entry = _run(with_queue(url, prefix, queue, upsert), url)
    if as_json:
        _print_json(entry)
    else:
        nxt = when_text(entry["next_run"], time.time())
        out.print(f"scheduler {scheduler_id} on {queue}: {every_text(entry)}, next run "
                  f"{nxt} (job {entry['job_id']})", markup=False, highlight=False)  # fmt: skip


@schedule.command("remove")
@click.argument("queue")
@click.argument("scheduler_id", metavar="ID")
@store_options
def schedule_remove(queue: str, scheduler_id: str, url: str | None, prefix: str,
                    as_json: bool) -> None:  # fmt: skip
    """Remove the scheduler ID of QUEUE and its delayed next job."""
    announce_store(url, quiet=as_json)
    removed = _run(with_queue(url, prefix, queue,
                              lambda q: q.remove_job_scheduler(scheduler_id)), url)  # fmt: skip
    if not removed:
        raise UserError(f"no scheduler {scheduler_id} in queue {queue}")
    if as_json:
        _print_json({"removed": True})
    else:
        out.print(f"removed scheduler {scheduler_id} of {queue}", markup=False, highlight=False)
