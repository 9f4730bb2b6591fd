"""Job schedulers: jobs made on a schedule (every N seconds, or a cron pattern).

A scheduler makes ordinary jobs, its iterations (``repeat:<id>:<millis>`` on Redis); the
next iteration is made when the current one *starts*, as BullMQ does, so Node and dockyard
workers advance each other's schedulers. After downtime a scheduler runs once, not once per
missed slot: ``every`` skips the slots it missed, a pattern resumes at its next time after
now. Here: checking what users give (before anything is written) and the public
``JobScheduler``; ``Queue`` has the thin methods, each store the ``SchedulerStore``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .backends.schedulerstore import SchedulerInfo, SchedulerSpec, SchedulerStore
from .cron import CronPattern, validate_timezone
from .durations import to_epoch, to_ms, to_seconds
from .errors import InvalidJobError, InvalidOptionError, NotSupportedError
from .job import Job, dump_json
from .options import JobOptions, build_options, check_text

if TYPE_CHECKING:
    from .backends import Backend

#: Options a template may not hold: each iteration's id, delay and time are the scheduler's,
#: and deduplication would stop the schedule (BullMQ #2954).
REFUSED_TEMPLATE_OPTIONS = ("job_id", "delay", "repeat", "deduplication", "timestamp")
_TEMPLATE_KEYS = frozenset({"name", "data", "opts"})
_DEFAULTS = JobOptions()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobScheduler:
    """A stored job scheduler. Times are epoch seconds, durations seconds."""

    id: str
    #: The iterations' job name.
    name: str
    #: When the pending iteration is due (None once the schedule has no iteration).
    next_run: float | None
    #: Iterations made since the scheduler was first created (kept across upserts).
    iteration_count: int
    every: float | None
    pattern: str | None
    tz: str | None
    start: float | None
    end: float | None
    limit: int | None
    offset: float | None
    #: ``{"name", "data", "opts"}``, opts as ``Queue.add`` takes them.
    template: Mapping[str, Any]

    @property
    def next_run_at(self) -> datetime | None:
        """``next_run`` as an aware UTC datetime."""
        return None if self.next_run is None else datetime.fromtimestamp(self.next_run, UTC)


def scheduler_store(backend: Backend) -> SchedulerStore:
    """The store's scheduler part; NotSupportedError on a store without one yet."""
    store: SchedulerStore | None = getattr(backend, "schedulers", None)
    if store is None:
        raise NotSupportedError(
            f"job schedulers are not available on the {backend.kind!r} store yet; "
            "use the Redis store (redis://)"
        )
    return store


def check_scheduler_ref(scheduler_id: object) -> str:
    """An id to look a scheduler up by (Node's ids may hold ':')."""
    if not isinstance(scheduler_id, str) or not scheduler_id:
        raise InvalidOptionError(f"a scheduler id is a non-empty string, got {scheduler_id!r}")
    try:
        return check_text(scheduler_id, "the scheduler id")
    except InvalidJobError as exc:
        raise InvalidOptionError(str(exc)) from None


def check_new_scheduler_id(scheduler_id: object) -> str:
    """An id to create a scheduler with. ':' is refused: BullMQ takes ids of 5 or more
    ':'-separated parts for legacy repeatable jobs (duplicated or never advanced, #3828,
    #3499), and the iteration ids ``repeat:<id>:<ms>`` stay unambiguous."""
    sid = check_scheduler_ref(scheduler_id)
    if ":" in sid:
        raise InvalidOptionError(
            f"scheduler id {sid!r} contains ':', which BullMQ reads as a legacy repeatable "
            "job's key; use '-' or '.' instead"
        )
    return sid


def _epoch_ms(value: object, name: str) -> int:
    """A point in time given as an aware datetime or epoch seconds, in ms."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidOptionError(
                f"{name} must be an aware datetime (with tzinfo) or epoch seconds; a naive "
                f"datetime is ambiguous, got {value!r}"
            )
        value = value.timestamp()
    return to_ms(to_epoch(value, name))


def _template(
    template: object, scheduler_id: str, defaults: JobOptions
) -> tuple[str, str, JobOptions]:
    """The iterations' name, data (JSON text) and options from ``{"name", "data", "opts"}``."""
    if template is None:
        template = {}
    if not isinstance(template, Mapping):
        raise InvalidOptionError(
            f"template must be a dict with 'name', 'data' and 'opts', got {template!r}"
        )
    unknown = sorted(set(template) - _TEMPLATE_KEYS, key=str)
    if unknown:
        raise InvalidOptionError(f"template takes 'name', 'data' and 'opts', not {unknown}")
    name = template.get("name", scheduler_id)
    if not isinstance(name, str) or not name:
        raise InvalidJobError(f"a job name must be a non-empty string, got {name!r}")
    check_text(name, "the job name")
    data = template.get("data")
    data_text = dump_json(data if data is not None else {}, "job data")
    opts = template.get("opts") or {}
    if not isinstance(opts, Mapping):
        raise InvalidOptionError(f"template opts must be a dict of job options, got {opts!r}")
    refused = [key for key in REFUSED_TEMPLATE_OPTIONS if key in opts]
    if refused:
        raise InvalidOptionError(
            f"template opts may not hold {', '.join(refused)}: each iteration's id, delay "
            "and time come from the schedule, and deduplication would stop it"
        )
    merged = build_options(defaults, **opts)
    # Queue defaults never give an iteration an id, delay, time or deduplication either.
    merged = replace(merged, job_id=None, delay=0.0, timestamp=None, deduplication=None)
    return name, data_text, merged


def plan_scheduler(
    scheduler_id: object,
    *,
    every: object,
    pattern: object,
    tz: object,
    start: object,
    end: object,
    limit: object,
    immediately: object,
    offset: object,
    template: object,
    defaults: JobOptions,
    now_ms: int,
) -> tuple[SchedulerSpec, int | None, JobOptions]:
    """Check an upsert's arguments; the spec, the first cron time (None for ``every``) and
    the template's options. Every refusal is an InvalidOptionError/InvalidJobError."""
    sid = check_new_scheduler_id(scheduler_id)
    if (every is None) == (pattern is None):
        raise InvalidOptionError("give exactly one of every (seconds) and pattern (cron)")
    if not isinstance(immediately, bool):
        raise InvalidOptionError(f"immediately must be True or False, got {immediately!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidOptionError(f"limit must be a whole number >= 1, got {limit!r}")
    start_ms = None if start is None else _epoch_ms(start, "start")
    end_ms = None if end is None else _epoch_ms(end, "end")
    if end_ms is not None and end_ms <= now_ms:
        raise InvalidOptionError(f"end is in the past ({end!r}); give a later end or none")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise InvalidOptionError(f"start ({start!r}) must be before end ({end!r})")
    if immediately and start is not None:
        raise InvalidOptionError("immediately and start contradict each other; give one")
    every_ms = offset_ms = next_ms = None
    if every is not None:
        every_ms = to_ms(to_seconds(every, "every", allow_zero=False))
        if every_ms < 1:
            raise InvalidOptionError(f"every must be at least 1 ms, got {every!r}")
        if immediately:
            raise InvalidOptionError(
                "immediately applies to cron patterns; an every schedule runs its first "
                "iteration at once already"
            )
        if tz is not None:
            raise InvalidOptionError("tz applies to cron patterns; every is zone-free")
        if offset is not None:
            offset_ms = to_ms(to_seconds(offset, "offset"))
            if offset_ms >= every_ms:
                raise InvalidOptionError(
                    f"offset must be shorter than every ({every!r}), got {offset!r}"
                )
    else:
        if not isinstance(pattern, str):
            raise InvalidOptionError(f"pattern must be a cron text, got {pattern!r}")
        if offset is not None:
            raise InvalidOptionError("offset applies to every schedules, not cron patterns")
        if tz is not None and not isinstance(tz, str):
            raise InvalidOptionError(f"tz must be an IANA time-zone name, got {tz!r}")
        if tz is not None:
            validate_timezone(tz)
        cron = CronPattern.parse(check_text(pattern, "the cron pattern"))
        if immediately:
            next_ms = now_ms
        else:
            found = cron.next_after(max(now_ms, start_ms or 0), tz=tz, end_ms=end_ms)
            if found is None:
                raise InvalidOptionError(
                    f"cron pattern {pattern!r} never fires"
                    + (" before end" if end_ms is not None else "")
                )
            next_ms = max(found, now_ms)
    name, data_text, opts = _template(template, sid, defaults)
    spec = SchedulerSpec(
        scheduler_id=sid,
        every_ms=every_ms,
        pattern=pattern if every is None else None,  # type: ignore[arg-type]
        tz=tz,
        start_ms=start_ms,
        end_ms=end_ms,
        limit=limit,
        offset_ms=offset_ms,
        immediately=immediately,
        name=name,
        data=data_text,
        opts=dump_json(opts.to_bullmq(), "job options"),
    )
    return spec, next_ms, opts


def public_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Stored (BullMQ) template options as the ``Queue.add`` keywords that differ from the
    defaults."""
    opts = JobOptions.from_bullmq(raw)
    out: dict[str, Any] = {}
    for f in fields(JobOptions):
        if f.name == "extra":
            continue
        value = getattr(opts, f.name)
        if value != getattr(_DEFAULTS, f.name):
            out[f.name] = value
    return out


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def public_scheduler(info: SchedulerInfo) -> JobScheduler:
    """A stored scheduler as the public ``JobScheduler``."""
    raw = info.template.get("opts")
    return JobScheduler(
        id=info.scheduler_id,
        name=info.name,
        next_run=_seconds(info.next_ms),
        iteration_count=info.iteration_count,
        every=_seconds(info.every_ms),
        pattern=info.pattern,
        tz=info.tz,
        start=_seconds(info.start_ms),
        end=_seconds(info.end_ms),
        limit=info.limit,
        offset=_seconds(info.offset_ms) if info.every_ms is not None else None,
        template={
            "name": info.name,
            "data": info.template.get("data", {}),
            "opts": public_options(raw if isinstance(raw, Mapping) else {}),
        },
    )


async def upsert(
    backend: Backend,
    queue_name: str,
    defaults: JobOptions,
    scheduler_id: str,
    **given: Any,
) -> Job:
    """Create or replace a scheduler (arguments as ``Queue.upsert_job_scheduler``); its
    pending iteration."""
    now_ms = int(time.time() * 1000)
    spec, next_ms, opts = plan_scheduler(scheduler_id, defaults=defaults, now_ms=now_ms, **given)
    store = scheduler_store(backend)
    job_id = await store.upsert_scheduler(spec, next_ms, now_ms)
    job = await backend.get_job(job_id)
    if job is not None:
        return job
    # Already run and removed by retention: the iteration as it was made.
    due = next_ms if next_ms is not None else now_ms
    return Job(
        id=job_id,
        name=spec.name,
        data=json.loads(spec.data),
        opts=opts,
        queue_name=queue_name,
        timestamp=now_ms / 1000,
        delay=max(due - now_ms, 0) / 1000,
        priority=opts.priority,
        backend=backend,
        repeat_job_key=spec.scheduler_id,
    )


def page_bounds(start: object, end: object) -> tuple[int, int]:
    """Check ``start``/``end`` of a page of schedulers (``end`` inclusive, -1 = all)."""
    for label, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidOptionError(f"{label} must be a whole number, got {value!r}")
    assert isinstance(start, int) and isinstance(end, int)
    return start, end
