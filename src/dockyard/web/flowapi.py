"""The flow and job-scheduler routes of the API (under ``/api/v1``): a job's flow tree, and
listing, reading, upserting and removing a queue's job schedulers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ..errors import JobNotFoundError, NotSupportedError
from ..flow import FlowProducer
from ..flowviews import not_supported, scheduler_dict, tree_dict
from ..queue import Queue
from .api import _body, _error, _Http, _job_id, _snake
from .app import Registry, registry_of

router = APIRouter()

#: The fields of a PUT body; ``every`` and ``offset`` are seconds, times epoch seconds.
SCHEDULER_FIELDS = ("every", "pattern", "tz", "start", "end", "limit", "immediately", "offset",
                    "template")  # fmt: skip
TEMPLATE_FIELDS = ("name", "data", "opts")


class _ServedFlows(FlowProducer):
    """A FlowProducer over the app's open queues (no connections of its own)."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(url=registry.url, prefix=registry.prefix)
        self._registry = registry

    def _queue(self, name: str) -> Queue:
        return self._registry.queue(name)

    async def close(self) -> None:
        """Nothing to close: the queues are the app's."""


def _unsupported(detail: str) -> JSONResponse:
    """501 with a detail: this store cannot do that (yet)."""
    return JSONResponse({"detail": detail}, status_code=501)


@router.get("/queues/{queue}/jobs/{job_id}/flow")
async def get_flow(
    queue: str,
    job_id: str,
    request: Request,
    depth: int = Query(10, ge=1, le=100, description="Levels (1: the job alone)."),
) -> Any:
    """The flow below a job: each node ``{id, queue, name, state, children}``, the root
    with its ``parent`` (``{id, queue}`` or null). 501 on a store without flows."""
    flows = _ServedFlows(registry_of(request))
    try:
        node = await flows.get_flow(queue, _job_id(job_id), depth=depth)
        if node is None:
            raise JobNotFoundError(f"no job {job_id} in queue {queue!r}")
        return await tree_dict(node)
    except NotSupportedError:
        url = registry_of(request).url
        return _unsupported(not_supported("flows (parent/child jobs)", url))


@router.get("/queues/{queue}/schedulers")
async def list_schedulers(queue: str, request: Request) -> Any:
    """The queue's job schedulers, soonest next run first."""
    q = registry_of(request).queue(queue)
    try:
        found = await q.get_job_schedulers(asc=True)
    except NotSupportedError as exc:
        return _unsupported(str(exc))
    return {"schedulers": [scheduler_dict(queue, s) for s in found]}


@router.get("/queues/{queue}/schedulers/{scheduler_id}")
async def get_scheduler(queue: str, scheduler_id: str, request: Request) -> Any:
    """One job scheduler: its pattern or interval, next run, iterations and job template."""
    q = registry_of(request).queue(queue)
    try:
        found = await q.get_job_scheduler(scheduler_id)
    except NotSupportedError as exc:
        return _unsupported(str(exc))
    if found is None:
        raise JobNotFoundError(f"no job scheduler {scheduler_id!r} in queue {queue!r}")
    return scheduler_dict(queue, found)


def _scheduler_args(body: Any) -> dict[str, Any]:
    """The keyword arguments of ``upsert_job_scheduler`` from a PUT body (422 otherwise)."""
    if not isinstance(body, dict):
        raise _Http(422, "the body must be an object with every or pattern (and tz, start, "
                         "end, limit, immediately, offset, template)")  # fmt: skip
    unknown = sorted(set(body) - set(SCHEDULER_FIELDS))
    if unknown:
        raise _Http(422, f"unknown field(s) {unknown}; use {', '.join(SCHEDULER_FIELDS)}")
    args = {key: value for key, value in body.items() if value is not None}
    for key in ("start", "end"):
        if isinstance(args.get(key), str):  # an ISO 8601 date-time (UTC without an offset)
            try:
                moment = datetime.fromisoformat(args[key])
            except ValueError:
                raise _Http(422, f"'{key}' is epoch seconds or an ISO 8601 date-time such as "
                                 "2030-01-31T09:00:00+01:00") from None  # fmt: skip
            args[key] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if "immediately" in args and not isinstance(args["immediately"], bool):
        raise _Http(422, "'immediately' must be true or false")
    template = args.get("template")
    if template is not None:
        if not isinstance(template, dict):
            raise _Http(422, "'template' must be an object {name, data, opts}")
        extra = sorted(set(template) - set(TEMPLATE_FIELDS))
        if extra:
            raise _Http(422, f"'template' has unknown field(s) {extra}; use name, data, opts")
        opts = template.get("opts")
        if opts is not None:
            if not isinstance(opts, dict):
                raise _Http(422, "'template.opts' must be an object")
            args["template"] = {**template, "opts": _snake(opts)}
    return args


@router.put("/queues/{queue}/schedulers/{scheduler_id}")
async def put_scheduler(queue: str, scheduler_id: str, request: Request) -> Any:
    """Create or replace a job scheduler (``every`` seconds or cron ``pattern``); 200 with
    the scheduler as stored and the id of its pending job."""
    try:
        args = _scheduler_args(await _body(request))
    except _Http as exc:
        return _error(exc)
    q = registry_of(request).queue(queue)
    try:
        job = await q.upsert_job_scheduler(scheduler_id, **args)
        found = await q.get_job_scheduler(scheduler_id)
    except NotSupportedError as exc:
        return _unsupported(str(exc))
    if found is None:  # removed by someone else in between
        raise JobNotFoundError(f"job scheduler {scheduler_id!r} was removed meanwhile")
    return {**scheduler_dict(queue, found), "job_id": job.id}


@router.delete("/queues/{queue}/schedulers/{scheduler_id}")
async def delete_scheduler(queue: str, scheduler_id: str, request: Request) -> Any:
    """Remove a job scheduler and its pending (not yet started) job."""
    q = registry_of(request).queue(queue)
    try:
        removed = await q.remove_job_scheduler(scheduler_id)
    except NotSupportedError as exc:
        return _unsupported(str(exc))
    if not removed:
        raise JobNotFoundError(f"no job scheduler {scheduler_id!r} in queue {queue!r}")
    return {"id": scheduler_id, "removed": True}
