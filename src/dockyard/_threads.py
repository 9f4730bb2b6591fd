"""The thread bridge: plain ``def`` handlers run on a worker's own long-lived threads.

Jobs for plain handlers go into one shared deque; up to ``size`` (the worker's
concurrency) threads take them in turn. A thread that finds more work queued behind the
job it took wakes one more thread (only one is ever on its way), so quick handlers run
back to back on one thread while blocking ones spread over as many threads as there are
jobs. Results go back through a deque with a single flag, so the event loop is woken once
per batch of results instead of once per job. The threads live as long as the worker, so
thread-local state (a Django database connection) lasts across the jobs a thread runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .job import Job

#: (handler, job, the future its result goes to)
_Item = tuple[Callable[[Any], Any], Job, "asyncio.Future[Any]"]


class ThreadBridge:
    """Runs plain handlers off the event loop on at most ``size`` threads."""

    def __init__(self, size: int, name: str = "dockyard-job") -> None:
        self._size = size
        self._name = name
        self._todo: deque[_Item] = deque()
        self._done: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self._mutex = threading.Lock()
        #: Wake-up locks of the idle threads (each thread waits on its own, held, lock).
        self._idle: list[threading.Lock] = []
        self._threads = 0
        self._waking = False  # a thread was woken (or started) and has not taken a job yet
        self._posted = False  # a delivery to the loop is scheduled and has not started
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, handler: Callable[[Any], Any], job: Job) -> asyncio.Future[Any]:
        """Queue ``handler(job)`` for a thread; the future resolves on the loop."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._todo.append((handler, job, future))
        self._kick()
        return future

    def _kick(self) -> None:
        """Make sure a thread is on its way to the queued jobs (one at a time)."""
        with self._mutex:
            if self._waking or self._closed:
                return
            if self._idle:
                self._waking = True
                self._idle.pop().release()
            elif self._threads < self._size:
                self._waking = True
                self._threads += 1
                wake = threading.Lock()  # starts released: the new thread runs at once
                thread = threading.Thread(
                    target=self._main,
                    args=(wake,),
                    name=f"{self._name}_{self._threads - 1}",
                    daemon=True,
                )
                thread.start()
            # else every thread is busy: each takes the next job when it is done.

    def _main(self, wake: threading.Lock) -> None:
        todo = self._todo
        while True:
            wake.acquire()
            with self._mutex:
                self._waking = False
                if self._closed:
                    return
            while True:
                try:
                    handler, job, future = todo.popleft()
                except IndexError:
                    break
                if todo:
                    self._kick()  # more queued: one more thread joins in
                try:
                    result: tuple[asyncio.Future[Any], bool, Any] = (
                        future,
                        True,
                        handler(ThreadJob(job, future.get_loop())),
                    )
                except BaseException as exc:  # the runner turns it into the attempt's failure
                    result = (future, False, exc)
                self._post(result)
                del handler, job, future, result
            with self._mutex:  # idle, unless a job came in since the last look
                if todo and not self._closed:
                    wake.release()  # re-acquired at once above: look again
                    self._waking = True
                else:
                    if self._closed:
                        return
                    self._idle.append(wake)

    def _post(self, result: tuple[asyncio.Future[Any], bool, Any]) -> None:
        """Hand a result to the loop; wake it only when no delivery is scheduled yet."""
        self._done.append(result)
        if not self._posted:
            self._posted = True
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        # The flag is cleared before reading: a result posted after this line schedules
        # another delivery, so none is left behind.
        self._posted = False
        done = self._done
        while done:
            future, ok, value = done.popleft()
            if future.cancelled():  # a timeout gave up on it
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def close(self) -> None:
        """Let idle threads end now and busy ones after their job; queued jobs are dropped."""
        with self._mutex:
            self._closed = True
            while self._idle:
                self._idle.pop().release()
        while self._todo:
            _, _, future = self._todo.popleft()
            future.cancel()


class ThreadJob:
    """A view of a Job for thread handlers: the same fields, with blocking methods that
    run the job's coroutines on the worker's loop."""

    __slots__ = ("_job", "_loop")

    def __init__(self, job: Job, loop: asyncio.AbstractEventLoop) -> None:
        self._job = job
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def _wait(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def update_progress(self, progress: Any) -> None:
        """Blocking ``Job.update_progress``."""
        self._wait(self._job.update_progress(progress))

    def log(self, line: str) -> int:
        """Blocking ``Job.log``."""
        result: int = self._wait(self._job.log(line))
        return result

    def get_state(self) -> str:
        """Blocking ``Job.get_state``."""
        result: str = self._wait(self._job.get_state())
        return result

    def move_to_waiting_children(
        self, token: str | None = None, *, child_key: str | None = None
    ) -> bool:
        """Blocking ``Job.move_to_waiting_children``."""
        moved: bool = self._wait(self._job.move_to_waiting_children(token, child_key=child_key))
        return moved

    def get_children_values(self) -> dict[str, Any]:
        """Blocking ``Job.get_children_values``."""
        values: dict[str, Any] = self._wait(self._job.get_children_values())
        return values
