"""Runner: call the handler for one job and decide how the attempt ended.

Kept apart from the worker's scheduling: this is the part that knows about handlers,
timeouts, retries, backoff and BullMQ's failure rules, and nothing about fetching.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._threads import ThreadBridge
from .backends.base import Finish
from .durations import to_ms
from .errors import (
    DelayedError,
    FailedChildrenError,
    InvalidOptionError,
    RateLimitError,
    UnrecoverableError,
    WaitingChildrenError,
)
from .isolate import HandlerError, Pool, target_of
from .job import Job, clean_text, dump_json

if TYPE_CHECKING:
    from .worker import BackoffStrategy, Handler, WorkerSettings

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

log = logging.getLogger("dockyard.worker")

#: A job whose own log/progress call failed because the store did (full, unreachable)
#: runs again this much later (ms), its attempt not counted.
STORE_FAILURE_DELAY_MS = 1000


class Runner:
    """Runs handlers; one per worker."""

    def __init__(
        self,
        handler: Handler | str | Mapping[str, Handler | str],
        strategies: Mapping[str, BackoffStrategy],
        settings: WorkerSettings,
        isolate: bool = False,
    ) -> None:
        self._pool: Pool | None = None
        self._targets: dict[Any, str] = {}
        if isolate:
            self._pool = Pool()
            if isinstance(handler, Mapping):
                handler = {name: self._isolated(h) for name, h in handler.items()}
            else:
                handler = self._isolated(handler)
        elif isinstance(handler, str) or (
            isinstance(handler, Mapping) and any(isinstance(h, str) for h in handler.values())
        ):
            raise InvalidOptionError("handlers given by name ('module:function') need isolate=True")
        if isinstance(handler, Mapping):
            if not handler or not all(callable(h) for h in handler.values()):
                raise InvalidOptionError("a handler mapping must map job names to callables")
            self._routes: dict[str, Handler] = dict(handler)  # type: ignore[arg-type]
            self._default: Handler | None = None
        elif callable(handler):
            self._routes = {}
            self._default = handler
        else:
            raise InvalidOptionError(
                f"handler must be a callable or a mapping of job name to callable, got {handler!r}"
            )
        self._is_async: dict[Any, bool] = {}
        self._strategies = dict(strategies)
        self._settings = settings
        self._threads = ThreadBridge(settings.concurrency)

    def _isolated(self, handler: Any) -> Handler:
        """Remember the name a child imports ``handler`` by (a callable, or a string)."""
        target = target_of(handler)
        runs: Handler = _by_name(target) if isinstance(handler, str) else handler
        self._targets[runs] = target
        return runs

    def _handler_for(self, name: str) -> Handler | None:
        return self._routes.get(name, self._default)

    async def run(self, job: Job) -> Finish:
        """Run the job's handler and describe the outcome (never raises but for cancellation)."""
        token = job.token or "0"
        if job.deferred_failure:
            return self._final_failure(job, token, job.deferred_failure, None)
        handler = self._handler_for(job.name)
        if handler is None:
            reason = f"no handler for job name {job.name!r} (known: {', '.join(self._routes)})"
            return self._final_failure(job, token, reason, None)
        try:
            result = await self._call(handler, job)
            value = "null" if result is None else dump_json(result, "the handler's return value")
        except BaseException as exc:
            if _ours(exc):
                raise
            store_error = job.store_failure(exc)
            if store_error is not None:
                return self._store_failed(job, token, store_error)
            return self._failure(job, token, _as_failure(job, exc))
        return Finish(
            job.id,
            token,
            "completed",
            value,
            keep=job.opts.remove_on_complete or self._settings.remove_on_complete,
            attempts=job.opts.attempts,
            metrics=self._settings.metrics,
        )

    async def close(self) -> None:
        """Stop the handler threads and the isolated children, if any."""
        self._threads.close()
        self._threads = ThreadBridge(self._settings.concurrency)  # a worker may run again
        if self._pool is not None:
            await self._pool.close()

    async def _call(self, handler: Handler, job: Job) -> Any:
        if self._pool is not None:
            return await self._pool.run(self._targets[handler], job, job.opts.timeout)
        is_async = self._is_async.get(handler)
        if is_async is None:
            is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
                getattr(handler, "__call__", None)  # noqa: B004
            )
            self._is_async[handler] = is_async
        timeout = job.opts.timeout
        if is_async:
            coro = handler(job)
            if timeout is None:
                return await coro
            async with asyncio.timeout(timeout):
                return await coro
        future = self._threads.run(handler, job)
        if timeout is None:
            return await future
        async with asyncio.timeout(timeout):
            return await future

    def _store_failed(self, job: Job, token: str, error: BaseException) -> Finish:
        """The handler stopped on its job's own log/progress call failing in the store:
        not the job's fault, so it runs again a little later and the attempt is not
        counted. No reason is written (that write could be refused too)."""
        log.warning(
            "job %s: the store refused the job's log/progress call (%s); it runs again in "
            "%.0f s, this attempt not counted",
            job.id,
            error,
            STORE_FAILURE_DELAY_MS / 1000,
        )
        return Finish(
            job.id,
            token,
            "delayed",
            "",
            delay_ms=STORE_FAILURE_DELAY_MS,
            attempts=job.opts.attempts,
            count_attempt=False,
        )

    def _failure(self, job: Job, token: str, exc: BaseException) -> Finish:
        if isinstance(exc, TimeoutError) and job.opts.timeout is not None:
            reason = f"job timed out after {job.opts.timeout:g} s"
        else:
            reason = clean_text(str(exc) or type(exc).__name__)
        if isinstance(exc, HandlerError):
            trace = clean_text(exc.child_trace.rstrip())
        else:
            trace = clean_text("".join(traceback.format_exception(exc)).rstrip())
        attempt = job.attempts_made + 1
        if isinstance(exc, UnrecoverableError) or type(exc).__name__ == "UnrecoverableError":
            return self._final_failure(job, token, reason, trace)
        if isinstance(exc, DelayedError):
            # The handler moved its own job (Job.move_to_delayed): nothing more to store.
            return Finish(job.id, token, "none", "")
        if _waits_for_children(exc):
            # The handler parked its job (Job.move_to_waiting_children): nothing to store.
            return Finish(job.id, token, "none", "")
        if isinstance(exc, RateLimitError):
            # Back to the front of wait, no attempt counted; the worker waits out the limit.
            return Finish(job.id, token, "release", "")
        if attempt >= job.opts.attempts:
            return self._final_failure(job, token, reason, trace)
        delay = self._backoff(job, attempt, exc)
        if delay is None:
            return self._final_failure(job, token, reason, trace)
        stack = self._stack(job, trace)
        if delay > 0:
            return Finish(
                job.id,
                token,
                "delayed",
                reason,
                delay_ms=to_ms(delay),
                attempts=job.opts.attempts,
                stacktrace=stack,
            )
        return Finish(
            job.id,
            token,
            "retry",
            reason,
            lifo=job.opts.lifo,
            attempts=job.opts.attempts,
            stacktrace=stack,
        )

    def _backoff(self, job: Job, attempt: int, exc: BaseException) -> float | None:
        """Seconds before the next attempt; None means do not retry."""
        backoff = job.opts.backoff
        if backoff is None:
            return 0.0
        if backoff.builtin:
            return backoff.delay_for(attempt)
        strategy = self._strategies.get(backoff.type)
        if strategy is None:
            return None
        delay = strategy(attempt, exc, job)
        if delay is None or delay < 0:
            return None
        return float(delay)

    def _stack(self, job: Job, trace: str | None) -> str:
        stack = list(job.stacktrace)
        if trace is not None:
            stack.append(trace)
        limit = job.opts.stack_trace_limit
        if limit is not None:
            stack = stack[-limit:] if limit > 0 else []
        return _dumps(stack)

    def _final_failure(self, job: Job, token: str, reason: str, trace: str | None) -> Finish:
        return Finish(
            job.id,
            token,
            "failed",
            reason,
            keep=job.opts.remove_on_fail or self._settings.remove_on_fail,
            attempts=job.opts.attempts,
            stacktrace=self._stack(job, trace),
            metrics=self._settings.metrics,
        )


def _waits_for_children(exc: BaseException) -> bool:
    """True for WaitingChildrenError (matched by name too, as BullMQ, for isolated jobs)."""
    return isinstance(exc, WaitingChildrenError) or type(exc).__name__ == "WaitingChildrenError"


def refused(runner: Runner, job: Job, token: str, exc: BaseException) -> Finish:
    """The outcome of a completion the store refused because of the job's children: a
    child failed with fail_parent_on_failure -> fail now, no retry; children still
    pending -> an ordinary failure of the attempt (retried per the job's attempts)."""
    if isinstance(exc, FailedChildrenError):
        return runner._final_failure(job, token, str(exc), None)
    return runner._failure(job, token, exc)


def _ours(exc: BaseException) -> bool:
    """A cancellation of the worker's own task (close, timeout): not the handler's failure."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class HandlerExitError(Exception):
    """The handler raised SystemExit, KeyboardInterrupt or another BaseException: that
    attempt fails with it as its reason, and the worker and its other jobs go on."""


def _as_failure(job: Job, exc: BaseException) -> BaseException:
    """An Exception stands; any other BaseException becomes a HandlerExitError naming it
    (field report #10: it used to end the whole worker process, naming no job)."""
    if isinstance(exc, Exception):
        return exc
    args = ", ".join(repr(a) for a in exc.args)
    reason = f"the handler raised {type(exc).__name__}({args})"
    log.warning("job %s: %s; that attempt fails, the worker goes on", job.id, reason)
    error = HandlerExitError(reason)
    error.__cause__ = exc
    return error


def _by_name(target: str) -> Any:
    """An isolated handler given by name: a placeholder the pool knows by its target."""

    def placeholder(job: Job) -> None:  # never called: the child runs the real one
        raise AssertionError(target)

    placeholder.__qualname__ = target
    return placeholder
