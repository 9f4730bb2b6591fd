"""Dramatiq as a benchmark peer (see common.py for the roles).

Settings: Redis broker, ``dramatiq.Worker(broker, worker_threads=8)`` in one process, which
is what ``dramatiq <module> --processes 1 --threads 8`` runs (without the CLI's supervisor
process); "2 procs" = two such processes. The actor has ``max_retries=0``. Dramatiq has no
bulk enqueue (``group`` sends one message at a time). Latency: the ``Results`` middleware
with the Redis backend and ``message.get_result(block=True)`` (only for that test).
"""

from __future__ import annotations

import os
import time

import dramatiq
from common import Counter, args, emit, now_ms, quiet_logging
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

A = args()
LATENCY = A["role"] == "latency" or A.get("sleep_ms", 0) < 0
broker = RedisBroker(url=A["redis"])
if LATENCY:
    broker.add_middleware(Results(backend=RedisBackend(url=A["redis"])))
dramatiq.set_broker(broker)
COUNTER: Counter | None = None
OPTIONS: dict[str, object] = {"store_results": True} if LATENCY else {}


@dramatiq.actor(queue_name="bench", max_retries=0, **OPTIONS)
def noop(i: int) -> float | None:
    if LATENCY:
        return now_ms()
    assert COUNTER is not None
    COUNTER.started()
    if A.get("sleep_ms"):
        time.sleep(A["sleep_ms"] / 1000)
    COUNTER.done()
    return None


def main() -> None:
    global COUNTER
    quiet_logging()
    role = A["role"]
    if role in ("enqueue", "fill"):
        if A.get("bulk") and role == "enqueue":
            raise SystemExit("dramatiq has no bulk enqueue API")
        started = time.perf_counter()
        for i in range(A["n"]):
            noop.send(i)
        emit(seconds=time.perf_counter() - started)
    elif role == "work":
        if not LATENCY:
            COUNTER = Counter(A["redis"])
        worker = dramatiq.Worker(broker, worker_threads=A.get("threads", 8))
        worker.start()
        emit(ready=True)
        while True:
            time.sleep(3600)
    elif role == "latency":
        start: list[float] = []
        done: list[float] = []
        warmup = A.get("warmup", 10)
        for i in range(warmup + A["n"]):
            before = now_ms()
            message = noop.send(i)
            began = message.get_result(block=True, timeout=10_000)
            after = now_ms()
            if i >= warmup:
                start.append(float(began) - before)
                done.append(after - before)
        emit(start=start, done=done)
        os._exit(0)
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
