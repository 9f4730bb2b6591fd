"""MemoryBackend: the Backend protocol in this process's memory (``memory://``).

For tests of user code and for scripts: no server, no file, no I/O. It keeps jobs the way
the Redis backend does (the same states, FIFO/LIFO/priority order, delayed promotion, lock
tokens with expiry, BullMQ's two-pass stalled check with ``max_stalled_count``, retries,
retention by count and age, events with BullMQ's names and fields, pause/resume) and
follows our Lua scripts transition by transition, so a queue behaves the same on both.

URLs
----
``memory://`` (the default store), ``memory://NAME`` or ``memory://?name=NAME``: every
``Queue``, ``Worker`` or other user of the same name in this process shares one store
(a queue is further told apart by its name and prefix). A store lives until the process
ends or :func:`reset` forgets it: in a test suite, give each test a store of its own name
or call ``reset()`` between tests. ``?clock=manual`` gives the store a virtual clock
(below); ``?clock=system`` (the default when a store is created) follows ``time.time()``.
A URL without ``clock`` joins an existing store whatever its clock.

Everything is guarded by one lock per store, so queues may be used from several threads
and event loops at once; idle workers and ``wait_until_finished`` are woken directly
(``loop.call_soon_threadsafe``), never by polling.

Virtual clock
-------------
With ``memory://NAME?clock=manual`` the store's time starts at the real time and moves
only when told, so delays, backoffs, lock expiry and stalled checks fire at once::

    url = "memory://t?clock=manual"
    queue = Queue("emails", url=url)
    job = await queue.add("send", {}, delay=3600)
    clock = clock_for(url)              # or queue.backend.clock
    async with Worker("emails", send, url=url):
        clock.advance(3600)             # or queue.backend.advance(3600); seconds or timedelta
        await job.wait_until_finished(timeout=5)

``ManualClock.advance(seconds)`` moves time forward event by event: delayed jobs are
promoted when due (their retry backoffs too), locks expire at their time, and on every
queue where a worker has run a stalled check, the checks that would have run every
``stalled_interval`` meanwhile are run (so a job whose worker died is requeued after
``advance(lock_duration + 2 * stalled_interval)`` at the most, as BullMQ's two-pass check
does); then waiting workers are woken. ``ManualClock.now()`` is the store's time (s).

On a manual store, the times written to jobs (``timestamp`` unless given, ``processed_on``,
``finished_on``) are the store's time. Only the store's time is virtual: a worker's lock
renewal, ``timeout`` of jobs, ``drain_delay`` and wait timeouts run on real time, so moving
time past ``lock_duration`` while a job is running makes its lock expire, as if its worker
had frozen that long.

Memory-only extras: :meth:`MemoryBackend.read_events` reads the queue's event list (the
BullMQ stream's entries: ``(id, {"event": name, **fields})``, capped at 10,000 like
BullMQ's default ``maxLenEvents``).
"""

from __future__ import annotations

from .backend import MemoryBackend
from .clock import ManualClock, SystemClock
from .state import MAX_EVENTS
from .stores import clock_for, parse_url, reset, store_for

__all__ = [
    "MAX_EVENTS",
    "ManualClock",
    "MemoryBackend",
    "SystemClock",
    "clock_for",
    "parse_url",
    "reset",
    "store_for",
]
