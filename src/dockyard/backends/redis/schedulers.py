"""BullMQ job schedulers on Redis: the scheduler store, and advancing a scheduler when a
dockyard worker starts one of its iterations.

Node BullMQ creates a scheduler's next iteration when a worker *starts* the current one
(not when it finishes), so a worker that takes an iteration and skips this ends the
schedule for good. Here the client-side half (limit, end date, cron) runs in Python and
the rest in one script (``advanceJobScheduler``), only for jobs carrying ``rjk``.
``RedisSchedulers`` writes and reads schedulers in the layout Node's ``upsertJobScheduler``
and ``getJobScheduler`` use (``addJobScheduler``, ``removeJobScheduler``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...cron import CronPattern
from ...errors import BackendUnavailableError, JobStateError
from ..schedulerstore import SchedulerInfo, SchedulerSpec, SchedulerStore
from .connection import ConnectionLost, RedisClient, ReplyError
from .keys import QueueKeys
from .scripts import load_scripts

if TYPE_CHECKING:
    from ...job import Job
    from ..base import Fetched
    from .scripts import QueueScripts

log = logging.getLogger("dockyard.worker")

#: Why the script made no iteration, by its numeric reply.
_NOT_ADVANCED = {
    0: "the scheduler was removed",
    1: "the job is not the scheduler's current iteration (already advanced)",
    2: "its next iteration exists already",
    3: "it has neither an interval nor a cron time",
    4: "it is a legacy repeatable job, not a job scheduler",
}
#: Connection errors are retried this many times, with growing pauses (BullMQ 5.x: 3).
_CONNECTION_TRIES = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class NextIteration:
    """What the client decides before the script runs: the next iteration's number
    (``repeat.count``) and, for cron schedulers, its time in ms (None for ``every``)."""

    iteration: int
    next_ms: int | None


def _number(value: object) -> float | None:
    """A repeat option as a finite number (BullMQ stores ms numbers; numeric text is
    tolerated); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _cron_next(pattern: str, after_ms: int, tz: str | None, end_ms: int | None) -> int | None:
    """The first cron time strictly after ``after_ms`` (None past ``end_ms``), from the
    cron-parser-compatible engine."""
    return CronPattern.parse(pattern).next_after(after_ms, tz=tz, end_ms=end_ms)


def plan_next(opts_extra: Mapping[str, Any], now_ms: int) -> NextIteration | None:
    """BullMQ's client-side checks on a started iteration's options (``repeat``,
    ``prevMillis``): None when the schedule has ended (limit reached, past its end date,
    or no cron time left); else what the next iteration is."""
    repeat = opts_extra.get("repeat")
    if not isinstance(repeat, Mapping):
        repeat = {}
    count = _number(repeat.get("count")) or 0
    iteration = int(count) + 1
    limit = _number(repeat.get("limit"))
    if limit is not None and iteration > limit:
        return None
    end = _number(repeat.get("endDate"))
    if end is not None and end > 0 and now_ms > end:
        return None
    pattern = repeat.get("pattern")
    if not isinstance(pattern, str) or not pattern or repeat.get("every"):
        return NextIteration(iteration=iteration, next_ms=None)
    base = max(now_ms, int(_number(opts_extra.get("prevMillis")) or 0))
    start = _number(repeat.get("startDate"))
    after = max(base, int(start)) if start is not None else base
    tz = repeat.get("tz")
    found = _cron_next(
        pattern,
        after,
        tz if isinstance(tz, str) and tz else None,
        int(end) if end is not None and end > 0 else None,
    )
    if found is None:
        return None
    return NextIteration(iteration=iteration, next_ms=max(found, base))


async def advance(scripts: QueueScripts, job: Job) -> str | None:
    """Create the next iteration of the scheduler ``job`` belongs to; its id, or None.

    Never raises for a scheduler's sake: the job runs whatever happens here. Connection
    errors are retried (the script is idempotent: a second run finds the scheduler already
    advanced); any other failure is logged as an error naming the scheduler.
    """
    sid = job.repeat_job_key
    if sid is None:
        return None
    pause = 0.2
    for attempt in range(1, _CONNECTION_TRIES + 1):
        now = int(time.time() * 1000)
        try:
            plan = plan_next(job.opts.extra, now)
            if plan is None:
                log.info("job scheduler %r ends with job %s (limit or end date)", sid, job.id)
                return None
            reply = await scripts.advance_job_scheduler(
                sid, job.id, now, plan.iteration, plan.next_ms
            )
        except ConnectionError as exc:
            if attempt == _CONNECTION_TRIES:
                log.error(
                    "job scheduler %r: could not create the iteration after job %s (%s); "
                    "the schedule stops until a worker runs a retry of this job or the "
                    "scheduler is upserted again",
                    sid,
                    job.id,
                    exc,
                )
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.5)
            continue
        except Exception as exc:  # a script or cron error must not lose the fetched job
            log.error(
                "job scheduler %r: could not create the iteration after job %s (%s: %s); "
                "running the job anyway",
                sid,
                job.id,
                type(exc).__name__,
                exc,
            )
            return None
        if isinstance(reply, bytes):
            return reply.decode()
        log.debug(
            "job scheduler %r not advanced by job %s: %s",
            sid,
            job.id,
            _NOT_ADVANCED.get(int(reply), f"code {reply}"),
        )
        return None
    return None


async def advance_fetched(scripts: QueueScripts, fetched: Fetched) -> Fetched:
    """Advance the schedulers of the fetched jobs that are iterations; nothing to do (and
    no round trip) for ordinary jobs. Returns ``fetched`` unchanged."""
    for job in fetched.jobs:
        if job.repeat_job_key is not None:
            await advance(scripts, job)
    return fetched


# -- the scheduler store ------------------------------------------------------------------

#: The hash fields of ``Q:repeat:<sid>`` that hold numbers (ms, counts).
_NUMBER_FIELDS = ("limit", "startDate", "endDate", "every", "offset", "ic")


def _int_or_none(raw: str | None) -> int | None:
    """A stored number as an int (Node writes ``1e3``-free decimal text); None if absent."""
    number = _number(raw) if raw is not None else None
    return None if number is None else int(number)


def _json_or(raw: str | None, default: Any) -> Any:
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def scheduler_info(sid: str, fields: Mapping[str, str], score: str | None) -> SchedulerInfo:
    """A scheduler read from its hash and zset score (BullMQ's field names, B.1)."""
    numbers = {name: _int_or_none(fields.get(name)) for name in _NUMBER_FIELDS}
    return SchedulerInfo(
        scheduler_id=sid,
        name=fields.get("name") or sid,
        next_ms=_int_or_none(score),
        iteration_count=numbers["ic"] or 0,
        every_ms=numbers["every"],
        pattern=fields.get("pattern") or None,
        tz=fields.get("tz") or None,
        start_ms=numbers["startDate"],
        end_ms=numbers["endDate"],
        limit=numbers["limit"],
        offset_ms=numbers["offset"],
        template={
            "data": _json_or(fields.get("data"), {}),
            "opts": _json_or(fields.get("opts"), {}),
        },
    )


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


def _fields(flat: list[bytes]) -> dict[str, str]:
    pairs = zip(flat[::2], flat[1::2], strict=True)
    return {k.decode(): v.decode("utf-8", "replace") for k, v in pairs}


class RedisSchedulers:
    """The job schedulers of one queue on Redis (``backend.schedulers``)."""

    def __init__(self, client: RedisClient, keys: QueueKeys) -> None:
        self._client = client
        self._keys = keys
        scripts = load_scripts()
        self._add = scripts["addJobScheduler"]
        self._remove = scripts["removeJobScheduler"]
        self._add_keys = keys.many(
            "repeat", "delayed", "wait", "paused", "meta", "prioritized",
            "marker", "id", "events", "pc", "active",
        )  # fmt: skip

    def _lost(self, exc: Exception) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"lost the connection to Redis at {self._client.address} ({exc}); "
            "the scheduler change may or may not have been applied"
        )

    async def _many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Several commands in one round trip."""
        try:
            conn = await self._client.connection()
            futures = [conn.send(command) for command in commands]
            replies = [await f for f in futures]
        except ConnectionLost as exc:
            raise self._lost(exc) from None
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return replies

    async def upsert_scheduler(self, spec: SchedulerSpec, next_ms: int | None, now_ms: int) -> str:
        fields: dict[str, str] = {"name": spec.name}
        repeat: dict[str, Any] = {}
        if spec.every_ms is not None:
            repeat["every"] = spec.every_ms
        else:
            repeat["pattern"] = fields["pattern"] = spec.pattern or ""
        for name, value in (("tz", spec.tz), ("limit", spec.limit),
                            ("startDate", spec.start_ms), ("endDate", spec.end_ms)):  # fmt: skip
            if value is not None:
                repeat[name] = value
                fields[name] = str(value)
        if spec.offset_ms is not None:
            repeat["offset"] = spec.offset_ms
        compact = {"separators": (",", ":"), "ensure_ascii": False}
        args = (
            self._keys.job_prefix,
            spec.scheduler_id,
            now_ms,
            "" if next_ms is None else next_ms,
            "" if spec.every_ms is None else spec.every_ms,
            "" if spec.offset_ms is None else spec.offset_ms,
            "" if spec.start_ms is None else spec.start_ms,
            json.dumps(fields, **compact),  # type: ignore[arg-type]
            spec.data,
            spec.opts,
            json.dumps(repeat, **compact),  # type: ignore[arg-type]
        )
        try:
            reply = await self._add.run(self._client, self._add_keys, args)
        except ConnectionLost as exc:
            raise self._lost(exc) from None
        if isinstance(reply, bytes):
            return reply.decode()
        raise JobStateError(
            f"job scheduler {spec.scheduler_id!r}: the id of its next iteration is held by "
            "another job (a finished iteration kept by retention, "
            f"{'32 slots in a row' if reply == -11 else 'at the cron time'}); remove those "
            "jobs (clean) and upsert again. Nothing was changed"
        )

    async def get_scheduler(self, scheduler_id: str) -> SchedulerInfo | None:
        flat, score = await self._many(
            ("HGETALL", self._keys.key(f"repeat:{scheduler_id}")),
            ("ZSCORE", self._keys.key("repeat"), scheduler_id),
        )
        if not flat:
            return None
        return scheduler_info(scheduler_id, _fields(flat), _text(score))

    async def get_schedulers(self, start: int, end: int, asc: bool) -> list[SchedulerInfo]:
        command = "ZRANGE" if asc else "ZREVRANGE"
        (members,) = await self._many((command, self._keys.key("repeat"), start, end, "WITHSCORES"))
        pairs = [(m.decode("utf-8", "replace"), s.decode()) for m, s in
                 zip(members[::2], members[1::2], strict=True)]  # fmt: skip
        if not pairs:
            return []
        hashes = await self._many(
            *(("HGETALL", self._keys.key(f"repeat:{sid}")) for sid, _ in pairs)
        )
        # A member without a hash is a legacy repeatable key (or half removed): not listed.
        return [
            scheduler_info(sid, _fields(flat), score)
            for (sid, score), flat in zip(pairs, hashes, strict=True)
            if flat
        ]

    async def remove_scheduler(self, scheduler_id: str) -> bool:
        keys = self._keys.many("repeat", "delayed", "events")
        try:
            reply = await self._remove.run(
                self._client, keys, (self._keys.job_prefix, scheduler_id)
            )
        except ConnectionLost as exc:
            raise self._lost(exc) from None
        return bool(reply)


def _is_a_scheduler_store(schedulers: RedisSchedulers) -> SchedulerStore:
    """Static check (mypy): RedisSchedulers satisfies the SchedulerStore protocol."""
    return schedulers
