"""Celery as a benchmark peer (see common.py for the roles).

Settings: Redis broker, ``--pool=solo`` (or ``"pool": "prefork"|"threads"`` with
``"pool_concurrency"``), ``--without-gossip --without-mingle --without-heartbeat``,
``--loglevel=WARNING``, no result backend (``task_ignore_result``) except for the latency
test, which uses the Redis result backend and ``AsyncResult.get()``. Celery has no bulk
enqueue (``group`` publishes one message at a time).
"""

from __future__ import annotations

import os
import time

from celery import Celery
from celery.signals import worker_ready
from common import Counter, args, emit, now_ms

A = args()
LATENCY = A["role"] == "latency" or A.get("sleep_ms", 0) < 0
app = Celery("bench", broker=A["redis"], backend=A["redis"] if LATENCY else None)
app.conf.task_ignore_result = not LATENCY
app.conf.task_default_queue = "bench"
app.conf.worker_hijack_root_logger = False
app.conf.broker_connection_retry_on_startup = True
_counter: tuple[int, Counter] | None = None


def counter() -> Counter:
    """This process's counter (prefork children each start their own)."""
    global _counter
    if _counter is None or _counter[0] != os.getpid():
        _counter = (os.getpid(), Counter(A["redis"]))
    return _counter[1]


@app.task(name="noop")
def noop(i: int) -> float | None:
    if LATENCY:
        return now_ms()
    c = counter()
    c.started()
    if A.get("sleep_ms"):
        time.sleep(A["sleep_ms"] / 1000)
    c.done()
    return None


@worker_ready.connect
def ready(**_: object) -> None:
    emit(ready=True)


def main() -> None:
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
        pool = A.get("pool", "solo")
        argv = [
            "worker",
            f"--pool={pool}",
            f"--hostname=bench{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
            "-Q",
            "bench",
        ]
        if pool != "solo":
            argv.append(f"--concurrency={A.get('pool_concurrency', 2)}")
        app.worker_main(argv)
    elif role == "latency":
        start: list[float] = []
        done: list[float] = []
        warmup = A.get("warmup", 10)
        for i in range(warmup + A["n"]):
            before = now_ms()
            began = noop.delay(i).get(timeout=10)
            after = now_ms()
            if i >= warmup:
                start.append(float(began) - before)
                done.append(after - before)
        emit(start=start, done=done)
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
