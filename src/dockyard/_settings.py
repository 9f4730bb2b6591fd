"""A worker's settings, and the checks of its option mappings (kept apart from the worker's
scheduling in worker.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .durations import to_ms, to_seconds
from .errors import InvalidOptionError
from .options import KeepJobs


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """How a worker runs; BullMQ's defaults. Durations in seconds."""

    concurrency: int = 1
    lock_duration: float = 30.0
    stalled_interval: float = 30.0
    max_stalled_count: int = 1
    drain_delay: float = 5.0
    name: str | None = None
    remove_on_complete: KeepJobs | None = None
    remove_on_fail: KeepJobs | None = None
    #: Data points of BullMQ metrics to keep (0 = record none).
    metrics: int = 0

    def __post_init__(self) -> None:
        c = self.concurrency
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise InvalidOptionError(f"concurrency must be a whole number >= 1, got {c!r}")
        m = self.max_stalled_count
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise InvalidOptionError(f"max_stalled_count must be a whole number >= 0, got {m!r}")
        if self.name is not None and (not isinstance(self.name, str) or " " in self.name):
            raise InvalidOptionError(f"worker name must be a string without spaces: {self.name!r}")


def metrics_points(metrics: Mapping[str, int] | None) -> int:
    """``{"max_data_points": n}`` (BullMQ's worker ``metrics``) as n; 0 when off."""
    if metrics is None:
        return 0
    points = metrics.get("max_data_points") if isinstance(metrics, Mapping) else None
    if set(metrics) != {"max_data_points"} or isinstance(points, bool):
        raise InvalidOptionError(f"metrics is {{'max_data_points': n}}, got {metrics!r}")
    if not isinstance(points, int) or points < 1:
        raise InvalidOptionError(f"max_data_points must be a whole number >= 1: {points!r}")
    return points


def limiter_of(limiter: Mapping[str, float] | None) -> tuple[int | None, int | None]:
    """``{"max": n, "duration": s}`` as (max, ms); BullMQ's worker ``limiter``."""
    if limiter is None:
        return None, None
    if not isinstance(limiter, Mapping) or set(limiter) != {"max", "duration"}:
        raise InvalidOptionError(
            f"limiter is {{'max': jobs, 'duration': seconds}}, got {limiter!r}"
        )
    most = limiter["max"]
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        raise InvalidOptionError(f"limiter max must be a whole number >= 1, got {most!r}")
    return most, to_ms(to_seconds(limiter["duration"], "limiter duration", allow_zero=False))
