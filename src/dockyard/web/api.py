"""The JSON API under ``/api/v1``: enqueue, follow and manage jobs."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ..backends import open_backend
from ..backends.base import STATES
from ..errors import DockyardError, InvalidJobError, JobNotFoundError
from ..events import QueueEvents
from ..job import Job
from ..options import RESERVED_IDS, JobOptions
from ..queue import CLEAN_STATES, MAX_PAGE, Queue
from .app import read_body, registry_of
from .stream import EventStream

router = APIRouter()
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(opts: dict[str, Any]) -> dict[str, Any]:
    """Job options in snake_case; BullMQ's camelCase spellings (``jobId``) are accepted."""
    return {_CAMEL.sub("_", key).lower(): value for key, value in opts.items()}


#: In list pages, data and return values larger than this (as JSON, roughly) are left out.
PREVIEW_CHARS = 2000


def job_json(
    job: Job, state: str, logs: list[str] | None = None, *, brief: bool = False
) -> dict[str, Any]:
    """A job as the API answers it (times in epoch seconds). ``brief`` (list pages) leaves
    out large data and return values (``*_truncated: true``) and the stack trace, so that a
    page stays small whatever the jobs carry (field report #18)."""
    entry: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "state": state,
        "data": job.data,
        "opts": job.opts.to_bullmq(),
        "progress": job.progress,
        "attempts_made": job.attempts_made,
        "attempts_started": job.attempts_started,
        "return_value": job.return_value,
        "failed_reason": job.failed_reason,
        "stacktrace": job.stacktrace,
        "timestamp": job.timestamp,
        "processed_on": job.processed_on,
        "finished_on": job.finished_on,
        "processed_by": job.processed_by,
        "delay": job.delay,
        "priority": job.priority,
    }
    if logs is not None:
        entry["logs"] = logs
    if not brief:
        entry["add_opts"] = add_options(job.opts)
    if brief:
        del entry["stacktrace"]
        for key in ("data", "return_value"):
            large = not _fits(entry[key], PREVIEW_CHARS)
            entry[f"{key}_truncated"] = large
            if large:
                entry[key] = None
        reason = entry["failed_reason"]
        if isinstance(reason, str) and len(reason) > PREVIEW_CHARS:
            entry["failed_reason"] = reason[:PREVIEW_CHARS] + "…"
    return entry


def add_options(opts: JobOptions) -> dict[str, Any]:
    """The job's options as ``POST /queues/{q}/jobs`` takes them (seconds, snake_case), for
    adding a job like it; without its own id and timestamp, which a new job must not share."""
    out: dict[str, Any] = {}
    if opts.attempts != 1:
        out["attempts"] = opts.attempts
    for name in ("delay", "priority", "lifo", "timeout", "keep_logs", "stack_trace_limit",
                 "dead_letter_queue"):  # fmt: skip
        value = getattr(opts, name)
        if value:
            out[name] = value
    if opts.backoff is not None:
        b = opts.backoff
        out["backoff"] = {
            "type": b.type,
            "delay": b.delay,
            **({"jitter": b.jitter} if b.jitter else {}),
        }
    for name in ("remove_on_complete", "remove_on_fail"):
        keep = getattr(opts, name)
        if keep is not None:
            out[name] = keep.to_bullmq()  # True, False, a count or {age (s), count}
    if opts.deduplication is not None:
        d = opts.deduplication
        out["deduplication"] = {"id": d.id, "ttl": d.ttl, "extend": d.extend, "replace": d.replace}
    return out


def _fits(value: Any, budget: int) -> bool:
    """Whether ``value`` as JSON takes about ``budget`` characters or fewer; stops counting
    past the budget, so a 100 MB payload costs no more than a small one."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            budget -= len(item) + 2
        elif isinstance(item, dict):
            budget -= 2 + len(item)
            for key, inner in item.items():
                pending.append(key)
                pending.append(inner)
        elif isinstance(item, (list, tuple)):
            budget -= 2 + len(item)
            pending.extend(item)
        else:
            budget -= 8
        if budget < 0:
            return False
    return True


async def _body(request: Request) -> Any:
    """The request's JSON body; 415/413/400/422 with a detail for anything else."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise _Http(415, "send the body as 'Content-Type: application/json'")
    raw = await read_body(request)
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise _Http(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _Http(400, "the body is not acceptable JSON: it is nested too deeply") from None
    try:
        # Strings must be text: a lone surrogate ("\ud800") cannot be stored (report #14).
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _Http(422, "the body holds a lone surrogate escape (such as \\ud800), "
                         "which is not text; send valid Unicode") from None  # fmt: skip
    except RecursionError:
        raise _Http(400, "the body is not acceptable JSON: it is nested too deeply") from None
    return body


class _Http(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _entry(raw: Any, index: int | None) -> tuple[str, Any, dict[str, Any]]:
    where = "the body" if index is None else f"entry {index}"
    if not isinstance(raw, dict):
        raise _Http(422, f'{where} must be an object {{"name", "data", "opts"}}')
    unknown = set(raw) - {"name", "data", "opts"}
    if unknown:
        raise _Http(422, f"{where} has unknown field(s) {sorted(unknown)}; use name, data, opts")
    name, opts = raw.get("name"), raw.get("opts") or {}
    if not isinstance(name, str) or not name:
        raise _Http(422, f"{where}: 'name' must be a non-empty string")
    if not isinstance(opts, dict):
        raise _Http(422, f"{where}: 'opts' must be an object")
    return name, raw.get("data"), _snake(opts)


def _queue(request: Request, name: str) -> Queue:
    return registry_of(request).queue(name)


def _job_id(job_id: str) -> str:
    """Refuse ids that name one of the queue's own keys instead of a job (``meta``,
    ``events``, ``de:...``), which would otherwise read or delete that key (reports #2, #14)."""
    colons = job_id.count(":")
    if (
        job_id in RESERVED_IDS
        or colons not in (0, 2)
        or (colons == 2 and job_id.split(":", 1)[0] in ("de", "metrics"))
    ):
        raise InvalidJobError(f"{job_id!r} is not a job id: it names one of the queue's keys")
    return job_id


def _error(exc: _Http) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


@router.post("/queues/{queue}/jobs", status_code=202)
async def add_jobs(queue: str, request: Request) -> Any:
    """Add one job (``{"name", "data", "opts"}``) or several (a list); 202 with the id(s)."""
    try:
        body = await _body(request)
        if isinstance(body, list):
            if not body:
                raise _Http(422, "the list of jobs is empty")
            entries = [_entry(raw, i) for i, raw in enumerate(body)]
        else:
            entries = [_entry(body, None)]
    except _Http as exc:
        return _error(exc)
    q = _queue(request, queue)
    if isinstance(body, list):
        jobs = await q.add_bulk(entries)
        return JSONResponse({"ids": [j.id for j in jobs]}, status_code=202)
    name, data, opts = entries[0]
    job = await q.add(name, data, **opts)
    return JSONResponse({"id": job.id}, status_code=202)


@router.get("/queues")
async def list_all(request: Request) -> dict[str, Any]:
    """Every queue with its counts per state and whether it is paused."""
    registry = registry_of(request)
    out: list[dict[str, Any]] = []
    for name in await registry.names():
        try:
            q = registry.queue(name)
        except DockyardError as exc:  # a name this server cannot serve (made elsewhere)
            out.append({"name": name, "counts": None, "paused": None, "error": str(exc)})
            continue
        counts = await q.get_job_counts()
        out.append({
            "name": name,
            "counts": counts,
            "paused": await q.is_paused(),
            "jobs_per_second": round(await registry.per_second(name), 2),
        })  # fmt: skip
    return {"queues": out}


@router.get("/queues/{queue}/jobs")
async def list_jobs(
    queue: str,
    request: Request,
    state: str = Query("waiting", description="One of " + ", ".join(STATES)),
    start: int = Query(0, ge=0),
    end: int = Query(19, ge=0),
) -> Any:
    """One page of jobs in a state, newest first, with the state's total."""
    if state not in STATES:
        return _error(_Http(400, f"unknown state {state!r}; use one of {', '.join(STATES)}"))
    if end < start or end - start >= MAX_PAGE:
        return _error(_Http(400, f"a page is start..end with at most {MAX_PAGE:,} jobs"))
    q = _queue(request, queue)
    jobs = await q.get_jobs(state, start, end)
    total = (await q.get_job_counts(state))[state]
    return {"jobs": [job_json(j, state, brief=True) for j in jobs], "total": total,
            "start": start}  # fmt: skip


async def _job_or_404(q: Queue, job_id: str) -> Job:
    job = await q.get_job(_job_id(job_id))
    if job is None:
        raise JobNotFoundError(f"no job {job_id} in queue {q.name!r}")
    return job


@router.get("/queues/{queue}/jobs/{job_id}")
async def get_job(queue: str, job_id: str, request: Request) -> dict[str, Any]:
    """One job with its state, progress, logs, return value or failure."""
    q = _queue(request, queue)
    job = await _job_or_404(q, job_id)
    return job_json(job, await job.get_state(), await q.get_job_logs(job_id))


@router.post("/queues/{queue}/jobs/{job_id}/retry")
async def retry_job(queue: str, job_id: str, request: Request) -> dict[str, Any]:
    """Run a failed (or completed) job again."""
    q = _queue(request, queue)
    await _job_or_404(q, job_id)
    await q.retry_job(job_id)
    return {"id": job_id, "state": "waiting"}


@router.post("/queues/{queue}/jobs/{job_id}/promote")
async def promote_job(queue: str, job_id: str, request: Request) -> dict[str, Any]:
    """Run a delayed job now."""
    job = await _job_or_404(_queue(request, queue), job_id)
    await job.promote()
    return {"id": job_id, "state": await job.get_state()}


@router.delete("/queues/{queue}/jobs/{job_id}")
async def remove_job(queue: str, job_id: str, request: Request) -> dict[str, Any]:
    """Delete a job (409 while a worker runs it)."""
    q = _queue(request, queue)
    if not await q.remove(_job_id(job_id)):
        raise JobNotFoundError(f"no job {job_id} in queue {queue!r}")
    return {"id": job_id, "removed": True}


@router.post("/queues/{queue}/pause")
async def pause(queue: str, request: Request) -> dict[str, Any]:
    """Workers take no new jobs from the queue."""
    await _queue(request, queue).pause()
    return {"paused": True}


@router.post("/queues/{queue}/resume")
async def resume(queue: str, request: Request) -> dict[str, Any]:
    """Workers take jobs again."""
    await _queue(request, queue).resume()
    return {"paused": False}


@router.post("/queues/{queue}/drain")
async def drain(queue: str, request: Request, delayed: bool = False) -> dict[str, Any]:
    """Delete every job that waits to run (and delayed ones with ``?delayed=true``)."""
    return {"removed": await _queue(request, queue).drain(delayed=delayed)}


@router.post("/queues/{queue}/clean")
async def clean(
    queue: str,
    request: Request,
    state: str = "completed",
    grace: float = Query(0.0, ge=0),
    limit: int = Query(0, ge=0),
) -> Any:
    """Delete jobs of a state older than ``grace`` seconds (at most ``limit``; 0 = all)."""
    if state not in CLEAN_STATES:
        return _error(_Http(400, f"clean works on {', '.join(CLEAN_STATES)}; got {state!r}"))
    removed = await _queue(request, queue).clean(grace, limit, state)
    return {"removed": removed}


@router.get("/queues/{queue}/events")
async def events(queue: str, request: Request, last_id: str = "$") -> EventStream:
    """Server-sent events: every event of the queue from now (or after ``last_id``)."""
    registry = registry_of(request)
    registry.queue(queue)  # a served queue?
    # A browser's EventSource resumes after the last id it saw: no event is lost in between.
    start = request.headers.get("last-event-id") or last_id
    # Built here, so that a bad id is a 422 before the stream starts. Its store gives up
    # after a while when unreachable, so that connecting never waits forever.
    backend = open_backend(registry.url, queue, prefix=registry.prefix, retry_for=5.0)
    return EventStream(QueueEvents(queue, backend=backend, last_id=start, block=1.0))
