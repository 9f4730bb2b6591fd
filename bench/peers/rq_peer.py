"""RQ as a benchmark peer (SimpleWorker: no fork per job; the forking Worker is far slower).

The latency worker is started with ``sleep_ms`` < 0, so its jobs return their start time."""

from __future__ import annotations

import time

import rq_jobs
from common import Counter, args, emit, now_ms
from rq import Queue, SimpleWorker

from redis import Redis

A = args()


def main() -> None:
    redis = Redis.from_url(A["redis"])
    queue = Queue("bench", connection=redis)
    role = A["role"]
    if role in ("enqueue", "fill"):
        redis.ping()
        started = time.perf_counter()
        n = A["n"]
        if A.get("bulk", role == "fill"):
            for i in range(0, n, 1000):
                queue.enqueue_many(
                    [
                        Queue.prepare_data(rq_jobs.noop, args=(j,))
                        for j in range(i, min(i + 1000, n))
                    ]
                )
        else:
            for i in range(n):
                queue.enqueue(rq_jobs.noop, i)
        emit(seconds=time.perf_counter() - started)
    elif role == "work":
        rq_jobs.SLEEP_MS = A.get("sleep_ms", 0)
        if rq_jobs.SLEEP_MS >= 0:
            rq_jobs.COUNTER = Counter(A["redis"])
        emit(ready=True)
        SimpleWorker([queue], connection=redis).work(logging_level="WARNING")
    elif role == "latency":
        start: list[float] = []
        done: list[float] = []
        for i in range(10 + A["n"]):
            before = now_ms()
            job = queue.enqueue(rq_jobs.noop, i)
            result = job.latest_result(timeout=10)
            after = now_ms()
            if i >= 10 and result is not None:
                start.append(float(result.return_value) - before)
                done.append(after - before)
        emit(start=start, done=done)


if __name__ == "__main__":
    main()
