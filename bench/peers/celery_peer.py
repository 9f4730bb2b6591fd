"""Celery as a benchmark peer: --pool=solo, Redis broker, results only for the latency test."""

from __future__ import annotations

import time

from celery import Celery
from celery.signals import worker_ready
from common import Counter, args, emit, now_ms

A = args()
latency_mode = A["role"] == "latency" or A.get("sleep_ms", 0) < 0
app = Celery("bench", broker=A["redis"], backend=A["redis"] if latency_mode else None)
app.conf.task_ignore_result = not latency_mode
app.conf.task_default_queue = "bench"
app.conf.worker_hijack_root_logger = False
COUNTER: Counter | None = None


@app.task(name="noop")
def noop(i: int) -> float | None:
    if A.get("sleep_ms", 0) < 0:
        return now_ms()
    assert COUNTER is not None
    COUNTER.started()
    if A.get("sleep_ms"):
        time.sleep(A["sleep_ms"] / 1000)
    COUNTER.done()
    return None


@worker_ready.connect
def ready(**_: object) -> None:
    emit(ready=True)


def main() -> None:
    global COUNTER
    role = A["role"]
    if role in ("enqueue", "fill"):
        if A.get("bulk") and role == "enqueue":
            raise SystemExit("celery has no bulk enqueue API")
        with app.connection_for_write() as conn:
            conn.ensure_connection()
            started = time.perf_counter()
            for i in range(A["n"]):
                noop.apply_async((i,), connection=conn)
        emit(seconds=time.perf_counter() - started)
    elif role == "work":
        COUNTER = Counter(A["redis"])
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=WARNING",
                "-Q",
                "bench",
            ]
        )
    elif role == "latency":
        start: list[float] = []
        done: list[float] = []
        for i in range(10 + A["n"]):
            before = now_ms()
            began = noop.delay(i).get(timeout=10)
            after = now_ms()
            if i >= 10:
                start.append(float(began) - before)
                done.append(after - before)
        emit(start=start, done=done)


if __name__ == "__main__":
    main()
