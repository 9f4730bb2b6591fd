"""The job function of the RQ peer (RQ refuses functions defined in ``__main__``)."""

from __future__ import annotations

import os
import time

from common import Counter, now_ms

SLEEP_MS = float(os.environ.get("BENCH_SLEEP_MS", "0"))
COUNTER: Counter | None = None


def noop(i: int) -> float | None:
    """No-op (or a short sleep); returns its start time in latency mode."""
    if SLEEP_MS < 0:
        return now_ms()
    if COUNTER is not None:
        COUNTER.started()
    if SLEEP_MS:
        time.sleep(SLEEP_MS / 1000)
    if COUNTER is not None:
        COUNTER.done()
    return None


__all__ = ["noop"]
