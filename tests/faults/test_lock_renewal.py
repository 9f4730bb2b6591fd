"""Handlers that outlast their lock keep it while the worker renews it.

(A handler that blocks the event loop itself is another issue's subject, not tested here.)
"""

from __future__ import annotations

import asyncio
import threading
import time

import redis
from dockyard import Job, Queue, Worker

from ..waiting import wait_for
from .helpers import events_per_job


async def test_a_plain_def_handler_running_2_5_s_keeps_its_1_s_lock_and_never_stalls(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    """One job; a plain ``def`` handler sleeps 2.5 s (in a worker thread, off the event
    loop) under lock_duration 1 s, with the stalled check every 0.3 s. The lock is renewed
    throughout (sampled every 0.1 s until the job finished, it always had a TTL, also
    past 2 s into the run): the job completes with the handler's value after one call, with ats 1,
    atm 1, no stc, no ``stalled`` event and exactly one ``completed`` event."""
    calls: list[tuple[str, bool]] = []
    running = threading.Event()

    def slow(job: Job) -> str:
        calls.append((job.id, threading.current_thread() is threading.main_thread()))
        running.set()
        time.sleep(2.5)
        return "done"

    async with Queue("q", url=redis_url) as queue:
        job = await queue.add("s", {})
        key = f"bull:q:{job.id}"
        async with Worker(
            "q", slow, url=redis_url, lock_duration=1, stalled_interval=0.3
        ) as worker:
            await wait_for(running.is_set, timeout=5, what="the handler to start")
            started = time.monotonic()
            # Sample the lock every 0.1 s until the job is finished: while it is not, the
            # lock must be there, including after its first 1 s ran out.
            ttls: list[tuple[float, int]] = []
            while True:
                pipe = redis_sync.pipeline()
                pipe.hexists(key, "finishedOn")
                pipe.pttl(key + ":lock")
                finished, ttl = pipe.execute()
                if finished:
                    break
                ttls.append((time.monotonic() - started, ttl))
                assert time.monotonic() - started < 10, "the job did not finish in 10 s"
                await asyncio.sleep(0.1)
            assert await job.wait_until_finished(timeout=5) == "done"
        assert worker.processed == 1
    assert all(ttl > 0 for _, ttl in ttls), ttls
    assert max(at for at, _ in ttls) > 2.0, ttls
    assert calls == [(job.id, False)], "one call, in a thread other than the loop's"
    h = redis_sync.hgetall(f"bull:q:{job.id}")
    assert (h["ats"], h["atm"], h.get("stc")) == ("1", "1", None), h
    assert events_per_job(redis_sync, "stalled") == {}
    assert events_per_job(redis_sync, "completed") == {job.id: 1}
    assert redis_sync.zrange("bull:q:completed", 0, -1) == [job.id]
