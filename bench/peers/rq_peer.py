"""RQ as a benchmark peer (see common.py for the roles).

Settings: ``SimpleWorker`` (runs jobs in the worker process) or, with ``"worker": "fork"``,
the default ``Worker`` (forks a child per job); logging at WARNING. Bulk enqueue with
``Queue.enqueue_many`` of ``Queue.prepare_data``; latency via ``job.latest_result(timeout=10)``.
"""

from __future__ import annotations

import time

import rq_jobs
from common import Counter, args, emit, now_ms, quiet_logging
from rq import Queue, SimpleWorker, Worker

from redis import Redis

A = args()


def main() -> None:
    quiet_logging()
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
        forking = A.get("worker") == "fork"
        if rq_jobs.SLEEP_MS >= 0:
            if forking:
                rq_jobs.DIRECT_URL = A["redis"]
            else:
                rq_jobs.COUNTER = Counter(A["redis"])
        worker_class = Worker if forking else SimpleWorker
        emit(ready=True)
        worker_class([queue], connection=redis).work(logging_level="WARNING")
    elif role == "latency":
        start: list[float] = []
        done: list[float] = []
        warmup = A.get("warmup", 10)
        for i in range(warmup + A["n"]):
            before = now_ms()
            job = queue.enqueue(rq_jobs.noop, i)
            result = job.latest_result(timeout=10)
            after = now_ms()
            if result is None:
                raise SystemExit(f"rq: no result for job {job.id} within 10 s")
            if i >= warmup:
                start.append(float(result.return_value) - before)
                done.append(after - before)
        emit(start=start, done=done)
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
