"""Durations and points in time as users give them (seconds, ``timedelta``), checked once,
and BullMQ's integer milliseconds."""

from __future__ import annotations

import math
from datetime import timedelta

from .errors import InvalidOptionError

# The longest duration any option takes. A delayed job's score is due_ms * 4096 + n and must
# stay an exact double (< 2**53), which holds until about 2039; ten years keeps every sum
# of now and a duration far from overflow.
MAX_SECONDS = 10 * 365 * 86_400
# The latest timestamp (epoch seconds) whose delayed score stays exact: 2**53 // 4096 ms.
MAX_EPOCH = 2**53 // 4096 // 1000


def to_seconds(
    value: object, name: str, *, allow_zero: bool = True, most: float = MAX_SECONDS
) -> float:
    """Read a duration given as seconds (int/float) or ``timedelta``; refuse bad values."""
    if isinstance(value, timedelta):
        secs = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    else:
        raise InvalidOptionError(
            f"{name} must be a number of seconds or a timedelta, got {value!r}"
        )
    if not math.isfinite(secs) or secs < 0 or (secs == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise InvalidOptionError(f"{name} must be {bound} seconds, got {value!r}")
    if secs > most:
        raise InvalidOptionError(f"{name} must be at most {most:,} seconds, got {value!r}")
    return secs


def to_epoch(value: object, name: str) -> float:
    """Read a point in time given as epoch seconds; refuse one past what the scores hold."""
    return to_seconds(value, name, most=MAX_EPOCH)


def to_ms(seconds: float) -> int:
    """Seconds (float) to BullMQ's integer milliseconds."""
    return round(seconds * 1000)
