"""Dramatiq as a benchmark peer (one process, 8 threads; results middleware for latency)."""

from __future__ import annotations

import time

import dramatiq
from common import Counter, args, emit, now_ms
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

A = args()
broker = RedisBroker(url=A["redis"])
latency_mode = A["role"] == "latency" or A.get("sleep_ms", 0) < 0
if latency_mode:
    broker.add_middleware(Results(backend=RedisBackend(url=A["redis"])))
dramatiq.set_broker(broker)
COUNTER: Counter | None = None


OPTIONS: dict[str, object] = {"store_results": True} if latency_mode else {}


@dramatiq.actor(queue_name="bench", max_retries=0, **OPTIONS)
def noop(i: int) -> float | None:
    if A.get("sleep_ms", 0) < 0:
        return now_ms()
    assert COUNTER is not None
    COUNTER.started()
    if A.get("sleep_ms"):
        time.sleep(A["sleep_ms"] / 1000)
    COUNTER.done()
    return None


def main() -> None:
    global COUNTER
    role = A["role"]
    if role in ("enqueue", "fill"):
        if A.get("bulk") and role == "enqueue":
            raise SystemExit("dramatiq has no bulk enqueue API")
        started = time.perf_counter()
        for i in range(A["n"]):
            noop.send(i)
        emit(seconds=time.perf_counter() - started)
    elif role == "work":
        COUNTER = Counter(A["redis"])
        worker = dramatiq.Worker(broker, worker_threads=8)
        worker.start()
        emit(ready=True)
        while True:
            time.sleep(3600)
    elif role == "latency":
        start: list[float] = []
        done: list[float] = []
        for i in range(10 + A["n"]):
            before = now_ms()
            message = noop.send(i)
            began = message.get_result(block=True, timeout=10_000)
            after = now_ms()
            if i >= 10:
                start.append(float(began) - before)
                done.append(after - before)
        emit(start=start, done=done)


if __name__ == "__main__":
    main()
