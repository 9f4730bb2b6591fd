"""What the Python peers share: the argument, the result line, the completion counter.

A worker counts finished jobs in-process; a thread flushes the count to the Redis hash
``bench:done`` every 5 ms (``count``, ``first`` = first job start, ``last:<pid>`` = last
completion, all in ms), so counting adds no round trip per job.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import redis


def args() -> dict[str, Any]:
    """The JSON object given as the first command-line argument."""
    parsed: dict[str, Any] = json.loads(sys.argv[1])
    return parsed


def emit(**fields: Any) -> None:
    """Print the one result line."""
    print(json.dumps(fields), flush=True)


def now_ms() -> float:
    """Wall-clock milliseconds (comparable across processes)."""
    return time.time() * 1000


class Counter:
    """Counts completions and flushes them to ``bench:done`` from a background thread."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._pending = 0
        self._first: float | None = None
        self._last = 0.0
        self._key = "bench:done"
        self._pid = os.getpid()
        threading.Thread(target=self._flush_forever, daemon=True).start()

    def started(self) -> None:
        """A job began (only the first call matters)."""
        if self._first is None:
            self._first = now_ms()

    def done(self) -> None:
        """A job finished."""
        self._pending += 1
        self._last = now_ms()

    def _flush_forever(self) -> None:
        sent_first = False
        while True:
            time.sleep(0.005)
            pending, self._pending = self._pending, 0
            if not pending and (sent_first or self._first is None):
                continue
            pipe = self._client.pipeline(transaction=False)
            if not sent_first and self._first is not None:
                pipe.hsetnx(self._key, "first", self._first)
                sent_first = True
            if pending:
                pipe.hincrby(self._key, "count", pending)
                pipe.hset(self._key, f"last:{self._pid}", self._last)
            pipe.execute()
