"""The routes the dashboard's views need beyond the basic API (under ``/api/v1``): actions
on several jobs at once, retry or promote a whole state, per-minute charts, the workers,
and search by name."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ..backends.base import STATES
from ..errors import DockyardError, JobNotFoundError, NotSupportedError
from ..queue import Queue
from .api import _body, _error, _Http, _job_id, job_json
from .app import registry_of, status_for

router = APIRouter()
#: Jobs one bulk request may name.
MAX_BULK = 1000
BULK_ACTIONS = ("retry", "remove", "promote")
#: Newest jobs of a state a search by name looks through, at most.
SEARCH_SCAN = 2000
#: Completed jobs whose wait times the charts show.
WAIT_SAMPLE = 100


@router.get("/info")
async def info(request: Request) -> dict[str, Any]:
    """What this server allows: ``read_only`` is true when it refuses every change."""
    return {"read_only": request.app.state.read_only}


@router.get("/queues/{queue}")
async def queue_summary(queue: str, request: Request) -> dict[str, Any]:
    """One queue's counts per state and whether it is paused (cheap: no job is read)."""
    q = registry_of(request).queue(queue)
    return {"name": queue, "counts": await q.get_job_counts(), "paused": await q.is_paused()}


def _bulk_args(body: Any) -> tuple[str, list[str]]:
    if not isinstance(body, dict) or set(body) != {"action", "ids"}:
        raise _Http(422, 'the body must be {"action": "retry" | "remove" | "promote", '
                         '"ids": ["1", "2", ...]}')  # fmt: skip
    action, ids = body["action"], body["ids"]
    if action not in BULK_ACTIONS:
        raise _Http(422, f"unknown action {action!r}; use one of {', '.join(BULK_ACTIONS)}")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise _Http(422, "'ids' must be a non-empty list of job ids (strings)")
    if len(ids) > MAX_BULK:
        raise _Http(422, f"at most {MAX_BULK:,} ids per request, got {len(ids):,}")
    return action, list(dict.fromkeys(ids))


async def _act(q: Queue, action: str, job_id: str) -> None:
    if action == "remove":
        if not await q.remove(_job_id(job_id)):
            raise JobNotFoundError(f"no job {job_id} in queue {q.name!r}")
        return
    job = await q.get_job(_job_id(job_id))
    if job is None:
        raise JobNotFoundError(f"no job {job_id} in queue {q.name!r}")
    if action == "retry":
        await q.retry_job(job_id)
    else:
        await job.promote()


@router.post("/queues/{queue}/bulk")
async def bulk(queue: str, request: Request) -> Any:
    """Retry, remove or promote several jobs: ``{"action", "ids"}``. Each id is tried on its
    own; the answer lists those ``done`` and the ``errors`` (id, status, detail) of the rest."""
    try:
        action, ids = _bulk_args(await _body(request))
    except _Http as exc:
        return _error(exc)
    q = registry_of(request).queue(queue)
    done: list[str] = []
    errors: list[dict[str, Any]] = []
    for job_id in ids:
        try:
            await _act(q, action, job_id)
        except DockyardError as exc:
            errors.append({"id": job_id, "status": status_for(exc), "detail": str(exc)})
        else:
            done.append(job_id)
    return {"action": action, "done": done, "errors": errors}


@router.post("/queues/{queue}/retry")
async def retry_all(queue: str, request: Request, state: str = "failed") -> Any:
    """Move every failed (or ``?state=completed``) job back to waiting; how many moved."""
    if state not in ("failed", "completed"):
        return _error(_Http(400, f"retry takes state failed or completed, got {state!r}"))
    return {"moved": await registry_of(request).queue(queue).retry_jobs(state=state)}


@router.post("/queues/{queue}/promote")
async def promote_all(queue: str, request: Request) -> dict[str, Any]:
    """Run every delayed job now; how many moved."""
    return {"moved": await registry_of(request).queue(queue).promote_jobs()}


def minute_series(metrics: dict[str, Any], since_minute: int) -> list[list[int]]:
    """BullMQ's metrics as ``[minute (epoch s), jobs]`` pairs, oldest first, from
    ``since_minute`` (epoch minutes) on. ``data[0]`` is the minute before ``prev_ts``'s;
    the jobs counted since ``prev_ts`` all finished in its minute."""
    prev_ts = metrics.get("prev_ts")
    if prev_ts is None:
        return []
    last = int(prev_ts) // 60000
    points = [(last, int(metrics["count"]) - int(metrics["prev_count"]))]
    points += [(last - 1 - i, int(n)) for i, n in enumerate(metrics["data"])]
    return [[minute * 60, n] for minute, n in reversed(points) if minute >= since_minute]


@router.get("/queues/{queue}/stats")
async def stats(
    queue: str, request: Request, minutes: int = Query(180, ge=1, le=1440)
) -> dict[str, Any]:
    """Jobs completed and failed per minute over the last ``minutes`` (from the metrics
    workers record with ``metrics={"max_data_points": n}``; ``recorded`` is false when
    none do), and how long the last completed jobs waited before they ran."""
    q = registry_of(request).queue(queue)
    since = int(time.time() // 60) - minutes + 1
    out: dict[str, Any] = {"minutes": minutes, "recorded": False}
    for kind in ("completed", "failed"):
        found = await q.get_metrics(kind, 0, minutes - 1)
        out["recorded"] = out["recorded"] or found.get("prev_ts") is not None
        out[kind] = minute_series(found, since)
    waits = []
    for job in reversed(await q.get_jobs("completed", 0, WAIT_SAMPLE - 1)):
        if job.processed_on is None or job.finished_on is None:
            continue
        waited = max(0.0, job.processed_on - job.timestamp - (job.delay or 0.0))
        waits.append({"id": job.id, "finished_on": job.finished_on, "wait": round(waited, 3),
                      "run": round(max(0.0, job.finished_on - job.processed_on), 3)})  # fmt: skip
    out["waits"] = waits
    return out


def _worker(fields: dict[str, str], now: float) -> dict[str, Any]:
    age = fields.get("age", "")
    idle = fields.get("idle", "")
    return {
        "name": fields.get("worker_name", ""),
        "addr": fields.get("addr") or None,
        "since": now - int(age) if age.isdigit() else None,
        "idle": int(idle) if idle.isdigit() else None,
        # Redis 7.2 tells the client library when the client says it; neither Node BullMQ
        # (ioredis) nor dockyard does today, so this is mostly null.
        "library": fields.get("lib-name") or None,
    }


@router.get("/queues/{queue}/workers")
async def workers(queue: str, request: Request) -> Any:
    """The workers connected to the queue now: name, address, since when. 501 on a store
    that does not track them (SQLite), saying so."""
    q = registry_of(request).queue(queue)
    try:
        found = await q.get_workers()
    except NotSupportedError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=501)
    now = time.time()
    return {"workers": sorted((_worker(w, now) for w in found), key=lambda w: w["name"])}


@router.get("/queues/{queue}/search")
async def search(
    queue: str,
    request: Request,
    name: str = Query(..., min_length=1, max_length=200),
    state: str = Query("waiting"),
    limit: int = Query(50, ge=1, le=100),
) -> Any:
    """Jobs of a state whose name contains ``name`` (any case), newest first; looks through
    the newest :data:`SEARCH_SCAN` jobs of the state at most (``complete`` says whether
    that was all of them)."""
    if state not in STATES:
        return _error(_Http(400, f"unknown state {state!r}; use one of {', '.join(STATES)}"))
    q = registry_of(request).queue(queue)
    wanted = name.casefold()
    found: list[dict[str, Any]] = []
    scanned = 0
    page = 200
    while scanned < SEARCH_SCAN and len(found) < limit:
        jobs = await q.get_jobs(state, scanned, scanned + page - 1)
        scanned += page
        found += [job_json(j, state, brief=True) for j in jobs if wanted in j.name.casefold()]
        if len(jobs) < page:
            break
    total = (await q.get_job_counts(state))[state]
    return {"jobs": found[:limit], "scanned": min(scanned, total), "complete": scanned >= total}
