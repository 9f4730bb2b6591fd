"""The job function of the RQ peer (RQ refuses functions defined in ``__main__``).

``rq_peer.py`` sets the module's globals in the worker process before it starts working.
"""

from __future__ import annotations

import time

from common import Counter, count_directly, now_ms

import redis

SLEEP_MS = 0.0
COUNTER: Counter | None = None
#: Set for rq's forking ``Worker``: each job runs in a fresh child, which writes its own count.
DIRECT_URL: str | None = None


def noop(i: int) -> float | None:
    """No-op (or a short sleep); in latency mode returns its start time."""
    if SLEEP_MS < 0:
        return now_ms()
    started = now_ms()
    if COUNTER is not None:
        COUNTER.started()
    if SLEEP_MS:
        time.sleep(SLEEP_MS / 1000)
    if COUNTER is not None:
        COUNTER.done()
    elif DIRECT_URL is not None:
        count_directly(redis.Redis.from_url(DIRECT_URL), started)
    return None


__all__ = ["noop"]
