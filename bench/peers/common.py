"""What the Python peers share: the argument, the result line, the completion counter.

A peer is started by ``bench/run.py`` as ``python <peer>.py '<JSON object>'``; the object's
``role`` is one of ``enqueue`` (timed, one by one or in bulk), ``fill`` (untimed, as fast as
the library allows), ``work`` (a worker that prints ``{"ready": true}`` once it runs) or
``latency`` (sequential jobs against an idle worker). Every timed role prints one JSON line.

A worker counts finished jobs in-process; a thread flushes the count to the Redis hash
``bench:done`` every 5 ms, so counting adds no Redis round trip per job. Fields (times in
wall-clock ms): ``count``, ``first:<pid>`` = the first job start of that process,
``last:<pid>`` = its last completion, ``cmds`` = the commands the counter itself sent (so
that run.py can take them out of the server's command counts).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import redis

KEY = "bench:done"


def args() -> dict[str, Any]:
    """The JSON object given as the first command-line argument."""
    parsed: dict[str, Any] = json.loads(sys.argv[1])
    return parsed


def emit(**fields: Any) -> None:
    """Print one result line (on the real stdout: celery redirects ``sys.stdout``)."""
    out = sys.__stdout__ or sys.stdout
    out.write(json.dumps(fields) + "\n")
    out.flush()


def now_ms() -> float:
    """Wall-clock milliseconds (comparable across processes)."""
    return time.time() * 1000


def quiet_logging() -> None:
    """Library logs at WARNING (per-job INFO lines would dominate a no-op job)."""
    import logging

    logging.basicConfig(level=logging.WARNING)


class Counter:
    """Counts completions; a daemon thread flushes them to ``bench:done`` every 5 ms.

    Thread-safe (dramatiq's and celery's threads call it concurrently): a lock guards the
    pending count; uncontended in the asyncio peers.
    """

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._lock = threading.Lock()
        self._pending = 0
        self._first: float | None = None
        self._last = 0.0
        self._pid = os.getpid()
        threading.Thread(target=self._flush_forever, name="bench-counter", daemon=True).start()

    def started(self) -> None:
        """A job began (only the first call matters)."""
        if self._first is None:
            self._first = now_ms()

    def done(self) -> None:
        """A job finished."""
        with self._lock:
            self._pending += 1
            self._last = now_ms()

    def _flush_forever(self) -> None:
        sent_first = False
        while True:
            time.sleep(0.005)
            with self._lock:
                pending, self._pending, last = self._pending, 0, self._last
            first = self._first
            if not pending and (sent_first or first is None):
                continue
            pipe = self._client.pipeline(transaction=False)
            cmds = 1
            if not sent_first and first is not None:
                pipe.hset(KEY, f"first:{self._pid}", first)
                sent_first = True
                cmds += 1
            if pending:
                pipe.hincrby(KEY, "count", pending)
                pipe.hset(KEY, f"last:{self._pid}", last)
                cmds += 2
            pipe.hincrby(KEY, "cmds", cmds)
            pipe.execute()


def count_directly(client: redis.Redis, started: float) -> None:
    """For a job run in a forked child (rq's ``Worker``): one pipelined write per job."""
    pid = os.getpid()
    pipe = client.pipeline(transaction=False)
    pipe.hsetnx(KEY, f"first:{pid}", started)
    pipe.hincrby(KEY, "count", 1)
    pipe.hset(KEY, f"last:{pid}", now_ms())
    pipe.hincrby(KEY, "cmds", 4)
    pipe.execute()
