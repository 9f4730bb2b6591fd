"""BullMQ's job metrics, for the stores that keep them outside Redis (memory, SQLite):
a total, and the jobs finished per elapsed minute, newest first, at most N data points.
The Redis backend does the same inside its moveToFinished script."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Metrics:
    """One kind (completed or failed) of one queue."""

    count: int = 0
    prev_ts: int | None = None
    prev_count: int = 0
    data: list[int] = field(default_factory=list)

    def record(self, now: int, points: int) -> None:
        """Count one finished job at ``now`` (ms), keeping ``points`` data points."""
        before = self.count
        self.count += 1
        if self.prev_ts is None:
            self.prev_ts, self.prev_count = now, 0
            return
        minutes = min(now // 60000 - self.prev_ts // 60000, points)
        if minutes > 0:
            self.data[:0] = [0] * (minutes - 1) + [before - self.prev_count]
            del self.data[points:]
            self.prev_count, self.prev_ts = before, now

    def view(self, start: int, end: int) -> dict[str, Any]:
        """What ``Backend.get_metrics`` answers, with ``data[start..end]`` (inclusive)."""
        n = len(self.data)
        lo = start if start >= 0 else max(n + start, 0)
        hi = (end if end >= 0 else n + end) + 1
        return {
            "count": self.count,
            "prev_ts": self.prev_ts,
            "prev_count": self.prev_count,
            "data": self.data[lo:hi],
        }
