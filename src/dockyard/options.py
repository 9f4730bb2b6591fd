"""Job options: validation of what users pass, and BullMQ's ``opts`` encoding.

The Python API speaks seconds and snake_case; BullMQ's ``opts`` JSON speaks milliseconds
and camelCase. Both directions live here (and, for ``backoff``, in backoff.py) so that no
other module knows BullMQ's spellings. Durations are read by durations.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .backoff import Backoff
from .durations import to_epoch, to_ms, to_seconds
from .errors import InvalidJobError, InvalidOptionError

#: Highest priority BullMQ 6.x accepts (5.x accepts one more); lower numbers run sooner.
MAX_PRIORITY = 2**21 - 1

#: Queue key suffixes a job id must not equal, or its hash would clobber a queue key. An id
#: may not start with one of them and ``:`` either (``de:x``, ``metrics:completed:data``:
#: the deduplication and metrics keys), except a scheduler iteration ``repeat:<id>:<ms>``.
RESERVED_IDS = frozenset(
    {
        "wait",
        "paused",
        "active",
        "prioritized",
        "pc",
        "delayed",
        "marker",
        "waiting-children",
        "completed",
        "failed",
        "stalled",
        "stalled-check",
        "limiter",
        "meta",
        "events",
        "repeat",
        "id",
        "metrics",
        "priority",
        "delay",
        "de",
        "dn",
    }
)


def _non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOptionError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class KeepJobs:
    """Retention of finished jobs: keep at most ``count`` and none older than ``age`` seconds.

    ``count=None`` keeps any number; ``count=0`` removes the job as soon as it finishes.
    """

    count: int | None = None
    age: float | None = None

    @classmethod
    def coerce(cls, value: object, name: str) -> KeepJobs:
        """Accept ``True`` (remove at once), ``False`` (keep all), a count, or ``{age, count}``."""
        if isinstance(value, KeepJobs):
            return value
        if value is True:
            return cls(count=0)
        if value is False:
            return cls()
        if isinstance(value, int):
            return cls(count=_non_negative_int(value, name))
        if isinstance(value, Mapping):
            unknown = set(value) - {"age", "count"}
            if unknown:
                raise InvalidOptionError(f"{name} takes 'age' (seconds) and 'count', not {unknown}")
            count = value.get("count")
            age = value.get("age")
            return cls(
                count=None if count is None else _non_negative_int(count, f"{name} count"),
                age=None if age is None else to_seconds(age, f"{name} age"),
            )
        raise InvalidOptionError(
            f"{name} must be True, False, a count or {{'age': s, 'count': n}}, got {value!r}"
        )

    def to_bullmq(self) -> bool | int | dict[str, Any]:
        """BullMQ's stored form (``true``, ``false``, a number, or ``{age, count}``)."""
        if self.age is None:
            if self.count is None:
                return False
            return True if self.count == 0 else self.count
        out: dict[str, Any] = {"age": self.age if self.age % 1 else int(self.age)}
        if self.count is not None:
            out["count"] = self.count
        return out

    @classmethod
    def from_bullmq(cls, value: object) -> KeepJobs | None:
        """Read BullMQ's stored retention leniently; None when absent or unusable."""
        if value is None:
            return None
        if isinstance(value, bool):
            return cls(count=0) if value else cls()
        if isinstance(value, (int, float)):
            return cls(count=max(int(value), 0))
        if isinstance(value, Mapping):
            count, age = value.get("count"), value.get("age")
            return cls(
                count=int(count) if isinstance(count, (int, float)) and count >= 0 else None,
                age=float(age) if isinstance(age, (int, float)) and age > 0 else None,
            )
        return None


#: BullMQ's id of a job scheduler's iteration: ``repeat:<scheduler id>:<millis>`` (legacy
#: repeatable jobs put more colons in the middle part).
_SCHEDULER_ITERATION = re.compile(r"repeat:.+:[0-9]+", re.DOTALL)


def check_text(value: str, what: str) -> str:
    """Refuse text that is not valid Unicode (a lone surrogate such as ``"\\udce9"``): no
    store can keep it. The one rule for names, ids, data, results, progress and logs."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidJobError(
                f"{what} is not valid Unicode text: it holds the lone surrogate "
                f"{value[exc.start]!r} (for example from a file name decoded with "
                "'surrogateescape'); decode it properly or replace that character"
            ) from None
    return value


def check_job_ref(job_id: object) -> str:
    """Check the id of an existing job before any store is asked about it: an id that
    names an internal key of the queue (``meta``, ``de:...``) is refused, never acted on.

    Every operation that takes a job id (get_job, remove, retry, promote, logs...) calls
    this; integers are taken as their decimal text (automatic ids).
    """
    if isinstance(job_id, int) and not isinstance(job_id, bool):
        job_id = str(job_id)
    if not isinstance(job_id, str) or not job_id:
        raise InvalidJobError(f"a job id is a non-empty string, got {job_id!r}")
    check_text(job_id, "the job id")
    if _internal_key(job_id):
        raise InvalidJobError(
            f"{job_id!r} cannot be a job id: it is the name of one of the queue's own keys "
            "(its settings, lists, deduplication or metrics); no job can have it"
        )
    return job_id


def _internal_key(job_id: str) -> bool:
    """True when ``P:N:<job_id>`` is (or may be) one of the queue's keys, not a job's."""
    if job_id in RESERVED_IDS:
        return True
    colons = job_id.count(":")
    if not colons:
        return False
    if _SCHEDULER_ITERATION.fullmatch(job_id):
        return False
    # One colon: a queue key (``de:x``, ``repeat:x``) or a job's sub-key (``5:lock``); BullMQ
    # allows exactly two otherwise, and never a queue key name before the first.
    return colons != 2 or job_id.partition(":")[0] in RESERVED_IDS


def validate_job_id(job_id: object) -> str:
    """Check a custom job id by BullMQ's rules, and refuse ids on the queue's own keys."""
    if not isinstance(job_id, str) or not job_id:
        raise InvalidJobError(f"job_id must be a non-empty string, got {job_id!r}")
    check_text(job_id, "job_id")
    if job_id in RESERVED_IDS:
        raise InvalidJobError(f"job_id {job_id!r} is the name of a queue key; choose another id")
    if _looks_like_int(job_id):
        raise InvalidJobError(
            f"job_id {job_id!r} is an integer; integers are reserved for automatic ids, "
            "use a string such as 'order-42'"
        )
    if job_id.startswith("0:"):
        raise InvalidJobError(f"job_id {job_id!r} must not start with '0:'")
    if ":" in job_id and job_id.count(":") != 2:
        raise InvalidJobError(f"job_id {job_id!r} must not contain ':'")
    if _internal_key(job_id):
        raise InvalidJobError(
            f"job_id {job_id!r} would land on one of the queue's own keys (its first part "
            f"{job_id.partition(':')[0]!r} names a queue key); choose another id"
        )
    return job_id


def _looks_like_int(text: str) -> bool:
    """JavaScript's ``String(parseInt(id)) === id``: a canonical decimal integer."""
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if not body.isdigit() or not body.isascii():
        return False
    if body == "0":
        return not negative
    return not body.startswith("0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Deduplication:
    """BullMQ's deduplication: while a job with this ``id`` is kept (unfinished, or for
    ``ttl`` seconds), adding another returns it instead. ``extend`` restarts the ttl on
    each duplicate; ``replace`` swaps a still-delayed job for the new one (debounce)."""

    id: str
    ttl: float | None = None
    extend: bool = False
    replace: bool = False

    @classmethod
    def coerce(cls, value: object) -> Deduplication:
        """Accept a Deduplication or ``{"id", "ttl" (s), "extend", "replace"}``."""
        if isinstance(value, Deduplication):
            return value
        if not isinstance(value, Mapping) or set(value) - {"id", "ttl", "extend", "replace"}:
            raise InvalidOptionError(
                f"deduplication takes 'id', 'ttl' (seconds), 'extend' and 'replace', got {value!r}"
            )
        dedup_id = value.get("id")
        if not isinstance(dedup_id, str) or not dedup_id:
            raise InvalidOptionError(f"deduplication id must be a non-empty string: {dedup_id!r}")
        check_text(dedup_id, "the deduplication id")
        ttl = value.get("ttl")
        flags = [value.get("extend", False), value.get("replace", False)]
        if not all(isinstance(f, bool) for f in flags):
            raise InvalidOptionError("deduplication 'extend' and 'replace' are True or False")
        return cls(
            id=dedup_id,
            ttl=None if ttl is None else to_seconds(ttl, "deduplication ttl", allow_zero=False),
            extend=flags[0],
            replace=flags[1],
        )

    def to_bullmq(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.ttl is not None:
            out["ttl"] = to_ms(self.ttl)
        if self.extend:
            out["extend"] = True
        if self.replace:
            out["replace"] = True
        return out

    @classmethod
    def from_bullmq(cls, value: object) -> Deduplication | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("id"), str):
            return None
        ttl = value.get("ttl")
        return cls(
            id=value["id"],
            ttl=ttl / 1000 if isinstance(ttl, (int, float)) and ttl > 0 else None,
            extend=bool(value.get("extend", False)),
            replace=bool(value.get("replace", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """Everything a job can be told at ``add`` time; times in seconds."""

    job_id: str | None = None
    delay: float = 0.0
    priority: int = 0
    lifo: bool = False
    attempts: int = 1
    backoff: Backoff | None = None
    remove_on_complete: KeepJobs | None = None
    remove_on_fail: KeepJobs | None = None
    timestamp: float | None = None
    keep_logs: int | None = None
    stack_trace_limit: int | None = None
    timeout: float | None = None
    deduplication: Deduplication | None = None
    #: A queue that receives a copy of the job when it fails for good (its last attempt).
    dead_letter_queue: str | None = None
    #: Options this version does not interpret (read from other producers), kept verbatim.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_bullmq(self) -> dict[str, Any]:
        """The ``opts`` JSON object as BullMQ stores it (milliseconds, camelCase)."""
        out: dict[str, Any] = dict(self.extra)
        out["attempts"] = self.attempts
        if self.delay:
            out["delay"] = to_ms(self.delay)
        if self.priority:
            out["priority"] = self.priority
        if self.lifo:
            out["lifo"] = True
        if self.job_id is not None:
            out["jobId"] = self.job_id
        if self.backoff is not None:
            out["backoff"] = self.backoff.to_bullmq()
        if self.remove_on_complete is not None:
            out["removeOnComplete"] = self.remove_on_complete.to_bullmq()
        if self.remove_on_fail is not None:
            out["removeOnFail"] = self.remove_on_fail.to_bullmq()
        if self.timestamp is not None:
            out["timestamp"] = to_ms(self.timestamp)
        if self.keep_logs is not None:
            out["kl"] = self.keep_logs
        if self.stack_trace_limit is not None:
            out["stackTraceLimit"] = self.stack_trace_limit
        if self.timeout is not None:
            out["timeout"] = to_ms(self.timeout)
        if self.deduplication is not None:
            out["de"] = self.deduplication.to_bullmq()
        if self.dead_letter_queue is not None:
            out["dlq"] = self.dead_letter_queue
        return out

    @classmethod
    def from_bullmq(cls, raw: Mapping[str, Any]) -> JobOptions:
        """Read stored ``opts`` leniently (any producer wrote them); unknown keys go to extra."""
        known = {
            "attempts",
            "delay",
            "priority",
            "lifo",
            "jobId",
            "backoff",
            "removeOnComplete",
            "removeOnFail",
            "timestamp",
            "kl",
            "keepLogs",
            "stackTraceLimit",
            "timeout",
            "de",
            "dlq",
        }
        attempts = _num(raw.get("attempts"), 0)
        return cls(
            job_id=str(raw["jobId"]) if raw.get("jobId") is not None else None,
            delay=_num(raw.get("delay"), 0) / 1000,
            priority=int(_num(raw.get("priority"), 0)),
            lifo=bool(raw.get("lifo", False)),
            attempts=max(int(attempts), 1),
            backoff=Backoff.from_bullmq(raw.get("backoff")),
            remove_on_complete=KeepJobs.from_bullmq(raw.get("removeOnComplete")),
            remove_on_fail=KeepJobs.from_bullmq(raw.get("removeOnFail")),
            timestamp=_num(raw["timestamp"], 0) / 1000 if "timestamp" in raw else None,
            keep_logs=_opt_int(raw.get("kl", raw.get("keepLogs"))),
            stack_trace_limit=_opt_int(raw.get("stackTraceLimit")),
            timeout=_num(raw["timeout"], 0) / 1000 if "timeout" in raw else None,
            deduplication=Deduplication.from_bullmq(raw.get("de", raw.get("debounce"))),
            dead_letter_queue=str(raw["dlq"]) if isinstance(raw.get("dlq"), str) else None,
            extra={k: v for k, v in raw.items() if k not in known},
        )


def _num(value: object, default: float) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return default
    return default


def _opt_int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


#: The keyword options ``Queue.add`` accepts, with the validator for each.
OPTION_NAMES = (
    "job_id",
    "delay",
    "priority",
    "lifo",
    "attempts",
    "backoff",
    "remove_on_complete",
    "remove_on_fail",
    "timestamp",
    "keep_logs",
    "stack_trace_limit",
    "timeout",
    "deduplication",
    "dead_letter_queue",
)


#: The options of a job added with none given (JobOptions is frozen: one shared instance).
DEFAULT_OPTIONS = JobOptions()


def build_options(base: JobOptions | None = None, /, **given: Any) -> JobOptions:
    """Validate keyword options over ``base`` defaults; unknown names raise InvalidOptionError."""
    if not given:  # the common add: nothing to validate, and the options are frozen
        return base if base is not None else DEFAULT_OPTIONS
    unknown = sorted(set(given) - set(OPTION_NAMES))
    if unknown:
        raise InvalidOptionError(
            f"unknown job option(s) {', '.join(unknown)}; known options are "
            f"{', '.join(OPTION_NAMES)}"
        )
    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is None and name in (
            "job_id",
            "backoff",
            "timestamp",
            "keep_logs",
            "stack_trace_limit",
            "timeout",
            "deduplication",
            "dead_letter_queue",
            "remove_on_complete",
            "remove_on_fail",
        ):
            values[name] = None
            continue
        values[name] = _VALIDATORS[name](value)
    return replace(base or JobOptions(), **values)


def _priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRIORITY:
        raise InvalidOptionError(
            f"priority must be a whole number from 0 to {MAX_PRIORITY} (lower runs sooner), "
            f"got {value!r}"
        )
    return value


def _attempts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidOptionError(f"attempts must be a whole number >= 1, got {value!r}")
    return value


def _lifo(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidOptionError(f"lifo must be True or False, got {value!r}")
    return value


def _queue_name(value: object) -> str:
    from .backends.redis.keys import validate_queue_name

    if not isinstance(value, str) or not value or ":" in value:
        raise InvalidOptionError(
            f"dead_letter_queue must be a queue name (non-empty, no ':'), got {value!r}"
        )
    validate_queue_name(value, "bull")  # the rule every queue name follows
    return check_text(value, "dead_letter_queue")


def _timestamp(value: object) -> float:
    return to_epoch(value, "timestamp")


_VALIDATORS: dict[str, Any] = {
    "job_id": validate_job_id,
    "delay": lambda v: to_seconds(v, "delay"),
    "priority": _priority,
    "lifo": _lifo,
    "attempts": _attempts,
    "backoff": Backoff.coerce,
    "remove_on_complete": lambda v: KeepJobs.coerce(v, "remove_on_complete"),
    "remove_on_fail": lambda v: KeepJobs.coerce(v, "remove_on_fail"),
    "timestamp": _timestamp,
    "keep_logs": lambda v: _non_negative_int(v, "keep_logs"),
    "stack_trace_limit": lambda v: _non_negative_int(v, "stack_trace_limit"),
    "timeout": lambda v: to_seconds(v, "timeout", allow_zero=False),
    "deduplication": Deduplication.coerce,
    "dead_letter_queue": _queue_name,
}
