"""Jobs finished per second, counted in the queue's events stream: right also for queues
whose finished jobs are removed at once, which the counts cannot show (field report #17)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from ..backends import Backend

#: Seconds of events the rate is taken over.
WINDOW = 10.0
#: Events read per call, and calls at most per look: a busy queue is caught up gradually.
PAGE = 1000
MAX_PAGES = 20
_FINISHED = frozenset({"completed", "failed"})


@dataclass(slots=True)
class Throughput:
    """Follows one queue's events from look to look; keeps when recent jobs finished."""

    last_id: str | None = None
    finished_ms: deque[int] = field(default_factory=deque)

    async def per_second(self, backend: Backend, now: float | None = None) -> float:
        """Jobs completed or failed per second over the last :data:`WINDOW` seconds."""
        now = time.time() if now is None else now
        since_ms = int((now - WINDOW) * 1000)
        # The first look starts a window back (stores with time-based ids skip straight
        # there; the others are read from their oldest kept event and filtered by time).
        after = self.last_id or f"{since_ms}-0"
        for _ in range(MAX_PAGES):
            entries = await backend.read_events(after, PAGE, 0.0)
            for entry_id, fields in entries:
                after = entry_id
                if fields.get("event") in _FINISHED:
                    ms = _ms_of(entry_id)
                    if ms >= since_ms:
                        self.finished_ms.append(ms)
            if len(entries) < PAGE:
                break
        self.last_id = after
        while self.finished_ms and self.finished_ms[0] < since_ms:
            self.finished_ms.popleft()
        return len(self.finished_ms) / WINDOW


def _ms_of(entry_id: str) -> int:
    head = entry_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0
