"""Job: the fields of one job, its BullMQ hash codec, and the methods a handler calls.

BullMQ's hash field names (``atm``, ``ats``, ``pb``, ``finishedOn``...) appear only in
:meth:`Job.from_redis` and :meth:`Job.to_redis`; everything else uses snake_case.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .durations import to_epoch, to_ms, to_seconds
from .errors import (
    BackendError,
    BackendUnavailableError,
    InvalidJobError,
    InvalidOptionError,
    JobFailed,
    JobLockedError,
    NotSupportedError,
    error_for_code,
)
from .options import MAX_PRIORITY, JobOptions, check_job_ref, check_text

if TYPE_CHECKING:
    from .backends.base import Backend
    from .backends.flowstore import FlowStore

_loads: Callable[[bytes], Any]
try:  # a default dependency where it has wheels: parsing (never encoding, which must refuse NaN)
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

#: Parsed ``opts`` by their stored text: jobs of a queue nearly always share the same text,
#: and JobOptions is immutable, so one parse serves them all.
_OPTS_CACHE: dict[bytes, JobOptions] = {}
_OPTS_CACHE_SIZE = 512


def _parse_opts(raw: bytes | None) -> JobOptions:
    if not raw:
        return JobOptions()
    opts = _OPTS_CACHE.get(raw)
    if opts is None:
        parsed = _json_or_text(raw, {})
        opts = JobOptions.from_bullmq(parsed if isinstance(parsed, dict) else {})
        if len(_OPTS_CACHE) >= _OPTS_CACHE_SIZE:
            _OPTS_CACHE.clear()
        _OPTS_CACHE[raw] = opts
    return opts


#: JSON nested deeper than this is refused: every store and reader (orjson reads 1,024
#: levels at most, Python's json about as many as its recursion limit) reads it back whole.
MAX_JSON_DEPTH = 500
#: Integers JSON readers give back exactly (orjson reads larger ones as floats).
_INT_RANGE = range(-(2**63), 2**64)
#: A run of digits long enough to be an integer outside that range (or part of a string).
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def dump_json(value: object, what: str) -> str:
    """Encode ``value`` as compact JSON, or raise InvalidJobError saying what was wrong.

    Only what reads back equal is taken: no NaN, no lone surrogates, no non-string dict
    keys (JSON would turn ``{1: 2}`` into ``{"1": 2}``), no integers beyond 64 bits,
    nothing nested too deep.
    """
    try:
        text = _dumps(value)
    except RecursionError:
        raise InvalidJobError(
            f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidJobError(
            f"{what} must be JSON-serialisable (dict, list, str, number, bool, None): {exc}"
        ) from None
    check_text(text, what)
    ints = _LONG_DIGITS.search(text) is not None  # rare: only then look at every number
    if ints or isinstance(value, (dict, list, tuple)):
        _check_tree(value, what, ints)
    return text


def _check_tree(value: object, what: str, ints: bool) -> None:
    """Refuse non-string dict keys, nesting past MAX_JSON_DEPTH and (with ``ints``)
    integers beyond 64 bits; iterative, so any depth is safe to look at."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, int) and not isinstance(node, bool):
            if node not in _INT_RANGE:
                raise InvalidJobError(
                    f"{what} holds the integer {node}, beyond 64 bits: JSON readers would "
                    "give back a rounded float; send it as a string"
                )
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidJobError(f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise InvalidJobError(
                        f"{what} has the {type(key).__name__} key {key!r}; JSON keys are "
                        f"strings, so it would come back as {_dumps(str(key))}: use string keys"
                    )
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        for child in children:
            if isinstance(child, (dict, list, tuple)) or (ints and isinstance(child, int)):
                todo.append((child, depth + 1))


def clean_text(text: str) -> str:
    """``text`` with any lone surrogate written as ``\\udcxx``: for failure reasons and
    stack traces, which are stored whatever they hold."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_or_text(raw: bytes | None, default: Any = None) -> Any:
    if raw is None:
        return default
    try:
        return _loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _ms(raw: bytes | None) -> float | None:
    if raw is None or raw == b"":
        return None
    try:
        return int(raw) / 1000
    except ValueError:
        return float(raw) / 1000


def _int(raw: bytes | None, default: int = 0) -> int:
    if raw is None or raw == b"":
        return default
    try:
        return int(raw)
    except ValueError:
        return int(float(raw))


class Job:
    """One job: what was asked (name, data, options) and what happened to it so far.

    Times are seconds since the epoch (floats); ``delay`` is in seconds.
    """

    __slots__ = (
        "_backend",
        "_store_error",
        "attempts_made",
        "attempts_started",
        "data",
        "deferred_failure",
        "delay",
        "failed_reason",
        "finished_on",
        "id",
        "name",
        "opts",
        "priority",
        "processed_by",
        "processed_on",
        "progress",
        "queue_name",
        "repeat_job_key",
        "return_value",
        "stacktrace",
        "stalled_counter",
        "timestamp",
        "token",
    )

    def __init__(
        self,
        *,
        id: str,
        name: str,
        data: Any = None,
        opts: JobOptions | None = None,
        queue_name: str = "",
        timestamp: float = 0.0,
        delay: float = 0.0,
        priority: int = 0,
        progress: Any = 0,
        attempts_made: int = 0,
        attempts_started: int = 0,
        stalled_counter: int = 0,
        failed_reason: str | None = None,
        stacktrace: Sequence[str] = (),
        return_value: Any = None,
        processed_on: float | None = None,
        finished_on: float | None = None,
        processed_by: str | None = None,
        deferred_failure: str | None = None,
        token: str | None = None,
        backend: Backend | None = None,
        repeat_job_key: str | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.data = data
        self.opts = opts if opts is not None else JobOptions()
        self.queue_name = queue_name
        self.timestamp = timestamp
        self.delay = delay
        self.priority = priority
        self.progress = progress
        self.attempts_made = attempts_made
        self.attempts_started = attempts_started
        self.stalled_counter = stalled_counter
        self.failed_reason = failed_reason
        self.stacktrace = list(stacktrace)
        self.return_value = return_value
        self.processed_on = processed_on
        self.finished_on = finished_on
        self.processed_by = processed_by
        self.deferred_failure = deferred_failure
        self.token = token
        self._backend = backend
        self._store_error: BaseException | None = None
        #: The id of the job scheduler (BullMQ ``rjk``) this job is an iteration of, if any.
        self.repeat_job_key = repeat_job_key

    def __repr__(self) -> str:
        return f"<Job {self.queue_name}:{self.id} {self.name!r} attempts_made={self.attempts_made}>"

    # -- codec -------------------------------------------------------------------------

    @classmethod
    def from_redis(
        cls,
        job_id: str,
        flat: Sequence[bytes],
        *,
        queue_name: str = "",
        backend: Backend | None = None,
        token: str | None = None,
    ) -> Job:
        """Build a Job from a BullMQ job hash as a flat ``[field, value, ...]`` list."""
        # On every fetched job: fills the slots directly rather than through __init__'s
        # keyword arguments, and reads the fields a fresh job lacks only when present.
        it = iter(flat)
        h: dict[bytes, bytes] = dict(zip(it, it, strict=True))
        get = h.get
        job = cls.__new__(cls)
        job.id = job_id
        job.name = get(b"name", b"").decode()
        job.data = _json_or_text(get(b"data"), {})
        job.opts = _parse_opts(get(b"opts"))
        job.queue_name = queue_name
        job.timestamp = _ms(get(b"timestamp")) or 0.0
        job.delay = _int(get(b"delay")) / 1000
        job.priority = _int(get(b"priority"))
        progress = get(b"progress")
        job.progress = 0 if progress is None else _json_or_text(progress, 0)
        atm = get(b"atm")
        if atm is None:
            atm = get(b"attemptsMade")
        job.attempts_made = _int(atm)
        job.attempts_started = _int(get(b"ats"))
        job.stalled_counter = _int(get(b"stc"))
        reason = get(b"failedReason")
        job.failed_reason = reason.decode("utf-8", "replace") if reason is not None else None
        stack = get(b"stacktrace")
        traces = _json_or_text(stack, []) if stack is not None else []
        job.stacktrace = [str(s) for s in traces] if isinstance(traces, list) else []
        returned = get(b"returnvalue")
        job.return_value = None if returned is None else _json_or_text(returned)
        job.processed_on = _ms(get(b"processedOn"))
        finished = get(b"finishedOn")
        job.finished_on = None if finished is None else _ms(finished)
        pb = get(b"pb")
        job.processed_by = pb.decode() if pb is not None else None
        defa = get(b"defa")
        job.deferred_failure = defa.decode("utf-8", "replace") if defa is not None else None
        job.token = token
        job._backend = backend
        job._store_error = None
        rjk = get(b"rjk")
        job.repeat_job_key = rjk.decode() if rjk is not None else None
        return job

    def to_redis(self) -> dict[str, str]:
        """The fields an add stores: ``name, data, opts, timestamp, delay, priority``."""
        return {
            "name": self.name,
            "data": dump_json(self.data, "job data"),
            "opts": _dumps(self.opts.to_bullmq()),
            "timestamp": str(to_ms(self.timestamp)),
            "delay": str(to_ms(self.delay)),
            "priority": str(self.priority),
        }

    # -- methods for handlers -------------------------------------------------------------

    def _need_backend(self) -> Backend:
        if self._backend is None:
            raise InvalidJobError("this Job is not bound to a queue; get it from a Queue or Worker")
        check_job_ref(self.id)
        return self._backend

    async def update_progress(self, progress: int | float | dict[str, Any]) -> None:
        """Record the job's progress (a number or a JSON-able dict) and emit ``progress``."""
        if isinstance(progress, bool) or not isinstance(progress, (int, float, dict)):
            raise InvalidOptionError(f"progress must be a number or a dict, got {progress!r}")
        text = dump_json(progress, "progress")
        backend = self._need_backend()
        try:
            await backend.update_progress(self.id, text)
        except (BackendError, BackendUnavailableError) as exc:
            self._store_error = exc  # the store failed, not the handler: see store_failure
            raise
        self.progress = progress

    async def log(self, line: str) -> int:
        """Append a line to the job's log (kept per ``keep_logs``); returns the log's length."""
        if not isinstance(line, str):
            raise InvalidOptionError(f"a log line must be a str, got {type(line).__name__}")
        check_text(line, "the log line")
        backend = self._need_backend()
        try:
            return await backend.add_log(self.id, line, self.opts.keep_logs)
        except (BackendError, BackendUnavailableError) as exc:
            self._store_error = exc  # the store failed, not the handler: see store_failure
            raise

    def store_failure(self, exc: BaseException) -> BaseException | None:
        """The store error of this job's own ``log``/``update_progress`` call behind ``exc``
        (the handler let it escape, maybe wrapped), or None: the worker then puts the job
        back without counting the attempt, since the store failed, not the handler."""
        seen: BaseException | None = exc
        for _ in range(10):  # follow a few causes/contexts, never a cycle
            if seen is None:
                return None
            if seen is self._store_error:
                return seen
            seen = seen.__cause__ or seen.__context__
        return None

    async def get_state(self) -> str:
        """The job's current state: waiting, active, delayed, prioritized, completed, ..."""
        return await self._need_backend().get_state(self.id)

    async def refresh(self) -> Job:
        """Re-read every field from the store; returns self."""
        fresh = await self._need_backend().get_job(self.id)
        if fresh is not None:
            for slot in Job.__slots__:
                if slot not in ("token", "_backend", "_store_error"):
                    setattr(self, slot, getattr(fresh, slot))
        return self

    async def wait_until_finished(self, timeout: float | None = None) -> Any:
        """Wait until the job completes and return its value; raise JobFailed if it failed.

        Raises ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        state, value = await self._need_backend().wait_finished(self.id, timeout)
        if state == "failed":
            raise JobFailed(self.id, str(value))
        self.return_value = value
        return value

    # -- management (admin) ---------------------------------------------------------------

    def _check(self, code: int, operation: str) -> None:
        if code < 0:
            raise error_for_code(code, self.id, operation)

    async def retry(self, state: str = "failed", *, reset_attempts: bool = False) -> None:
        """Run a ``failed`` (or ``completed``) job again: it goes back to waiting.

        ``reset_attempts`` starts its attempt count from zero, so it gets all its attempts.
        """
        if state not in ("failed", "completed"):
            raise InvalidOptionError(f"retry takes state 'failed' or 'completed', got {state!r}")
        code = await self._need_backend().reprocess(self.id, state, self.opts.lifo, reset_attempts)
        self._check(code, f"retry from {state}")

    async def promote(self) -> None:
        """Run a delayed job now, without waiting for its delay."""
        self._check(await self._need_backend().promote(self.id), "promote")
        self.delay = 0.0

    async def remove(self) -> None:
        """Delete the job and its logs; refused with JobLockedError while a worker runs it,
        and with PendingChildrenError while it has children pending."""
        code = await self._need_backend().remove(self.id)
        if code == 0:
            raise JobLockedError(
                f"job {self.id} is being processed (a worker holds its lock); remove it after "
                "it finishes"
            )
        self._check(code, "remove")

    async def change_priority(self, priority: int, *, lifo: bool = False) -> None:
        """Give the job a new priority (0 = none, 1 = highest); a waiting job moves at once."""
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not 0 <= priority <= MAX_PRIORITY
        ):
            raise InvalidOptionError(
                f"priority must be a whole number 0..{MAX_PRIORITY}, got {priority!r}"
            )
        self._check(
            await self._need_backend().change_priority(self.id, priority, lifo), "change_priority"
        )
        self.priority = priority

    async def change_delay(self, delay: float | timedelta) -> None:
        """Make a delayed job due ``delay`` seconds from now."""
        seconds = to_seconds(delay, "delay")
        code = await self._need_backend().change_delay(self.id, to_ms(seconds))
        self._check(code, "change_delay")
        self.delay = seconds

    async def update_data(self, data: Any) -> None:
        """Replace the job's data (JSON-able)."""
        text = dump_json(data, "job data")
        self._check(await self._need_backend().update_data(self.id, text), "update_data")
        self.data = data

    async def move_to_completed(self, return_value: Any = None, token: str | None = None) -> None:
        """Complete a job you took by hand (manual processing) with ``token``, its lock token."""
        await self._manual_finish("completed", dump_json(return_value, "return value"), token)
        self.return_value = return_value

    async def move_to_failed(self, reason: str, token: str | None = None) -> None:
        """Fail a job you took by hand (manual processing); no further attempts are made."""
        if not isinstance(reason, str):
            raise InvalidOptionError(f"a failure reason must be a str, got {reason!r}")
        check_text(reason, "the failure reason")
        await self._manual_finish("failed", reason, token)
        self.failed_reason = reason

    async def move_to_delayed(self, timestamp: float, token: str | None = None) -> None:
        """From a handler: run this job again at ``timestamp`` (epoch seconds), without
        counting an attempt; then ``raise DelayedError()`` so the worker leaves it there."""
        from .backends.base import Finish

        to_epoch(timestamp, "timestamp")
        token = token if token is not None else self.token
        if token is None:
            raise InvalidOptionError(f"job {self.id} has no lock token; pass the job's token")
        delay_ms = max(0, to_ms(timestamp - time.time()))
        result = Finish(
            job_id=self.id, token=token, outcome="delayed", value="", delay_ms=delay_ms,
            attempts=self.opts.attempts, count_attempt=False,
        )  # fmt: skip
        await self._need_backend().finish(result, None)

    async def _manual_finish(self, outcome: str, value: str, token: str | None) -> None:
        from .backends.base import Finish

        token = token if token is not None else self.token
        if token is None:
            raise InvalidOptionError(
                f"job {self.id} has no lock token; pass the token the job was taken with"
            )
        result = Finish(
            job_id=self.id, token=token, outcome=outcome, value=value, attempts=self.opts.attempts
        )
        await self._need_backend().finish(result, None)

    # -- flows (parent/child jobs) ------------------------------------------------------------

    def _flows(self, what: str) -> FlowStore:
        backend = self._need_backend()
        flows: FlowStore | None = getattr(backend, "flows", None)
        if flows is None:
            raise NotSupportedError(
                f"{what}: flows (parent/child jobs) are not supported by the {backend.kind!r} "
                f"store of job {self.id}; use the redis://, sqlite:// or memory:// store"
            )
        return flows

    async def move_to_waiting_children(
        self, token: str | None = None, *, child_key: str | None = None
    ) -> bool:
        """From a handler: wait for this job's pending children (or only ``child_key``, a
        child's full key ``<prefix>:<queue>:<id>``).

        True: the job now waits in ``waiting-children`` until they finish; then
        ``raise WaitingChildrenError()`` so the worker leaves it there. False: nothing is
        pending, so the job is still yours: carry on.
        """
        if child_key is not None and (not isinstance(child_key, str) or not child_key):
            raise InvalidOptionError(f"child_key must be a child's full key, got {child_key!r}")
        token = token if token is not None else self.token
        if token is None or not isinstance(token, str):
            raise InvalidOptionError(f"job {self.id} has no lock token; pass the job's token")
        flows = self._flows("move_to_waiting_children")
        return await flows.move_to_waiting_children(
            self.id, token, child_key, int(time.time() * 1000)
        )

    async def remove_child_dependency(self) -> bool:
        """Detach this job from its parent, which no longer waits for it: True if it was
        pending (a parent left with nothing pending goes to wait), False if it had no
        parent or was no longer pending (nothing changes then)."""
        return await self._flows("remove_child_dependency").remove_child_dependency(self.id)

    async def get_children_values(self) -> dict[str, Any]:
        """``{child key: return value}`` of this job's children that completed."""
        return await self._flows("get_children_values").children_values(self.id)

    async def get_failed_children_values(self) -> dict[str, str]:
        """``{child key: reason}`` of children that failed with continue/ignore-on-failure
        (BullMQ's "ignored" failures)."""
        return await self._flows("get_failed_children_values").ignored_failures(self.id)

    async def get_dependencies(self) -> dict[str, Any]:
        """This job's children by kind: ``processed`` {key: value}, ``unprocessed`` [keys],
        ``failed`` [keys failed with fail-parent-on-failure], ``ignored`` {key: reason}."""
        return await self._flows("get_dependencies").dependencies(self.id)

    async def get_dependencies_count(self) -> dict[str, int]:
        """How many children of each kind: processed, unprocessed, ignored, failed."""
        return await self._flows("get_dependencies_count").dependencies_count(self.id)
