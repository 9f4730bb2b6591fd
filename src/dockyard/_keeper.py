"""LockKeeper: renews a worker's locks from a thread of its own.

The keeper has its own event loop and its own connection to the store, so a handler
that blocks the worker's event loop (CPU-bound code, a blocking call) cannot make its
jobs lose their locks and be taken over as stalled. It also watches the worker loop's
heartbeat and warns, naming the jobs, when the loop was blocked.

A job is the worker's from the moment the store locks it for a fetch, which can be long
before a blocked loop reads the reply: for every fetch still in flight the keeper asks the
store which jobs carry that fetch's lock token, and renews those too (field report #8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from .backends import Backend
from .errors import BackendRefusedError

log = logging.getLogger("dockyard.worker")

#: How long the worker's loop may go without a heartbeat before we warn (seconds).
BLOCKED_AFTER = 1.0


class LockKeeper:
    """Renews ``locks()`` and the jobs locked by the tokens of ``pending()`` (fetches in
    flight) every ``period`` seconds from a daemon thread."""

    def __init__(
        self,
        open_backend: Callable[[], Backend],
        locks: Callable[[], dict[str, str]],
        lock_ms: int,
        period: float,
        pending: Callable[[], set[str]] = set,
    ) -> None:
        self._open_backend = open_backend
        self._locks = locks
        self._pending = pending
        self._lock_ms = lock_ms
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beat = time.monotonic()
        self.lost: set[str] = set()
        #: A refusal that will not heal (e.g. NOPERM on renewing); the worker stops on it.
        self.refused: BackendRefusedError | None = None

    def start(self) -> None:
        """Start the keeper thread."""
        self._thread = threading.Thread(target=self._main, name="dockyard-locks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the thread ends within one tick)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        backend = self._open_backend()
        tick = min(self._period, 0.25)
        next_renewal = time.monotonic() + self._period
        blocked_since: float | None = None
        try:
            while not self._stop.is_set():
                await asyncio.sleep(tick)
                now = time.monotonic()
                blocked_since = self._watch(now, blocked_since)
                if now >= next_renewal:
                    next_renewal = now + self._period
                    await self._renew(backend)
        finally:
            with contextlib.suppress(Exception):
                await backend.close()

    def _watch(self, now: float, blocked_since: float | None) -> float | None:
        """Warn once per episode when the worker's loop stops beating."""
        silent = now - self.beat
        if silent > BLOCKED_AFTER:
            if blocked_since is None:
                jobs = ", ".join(sorted(self._locks())) or "none"
                log.warning(
                    "the worker's event loop has been blocked for %.1f s (active jobs: %s); "
                    "a handler is blocking it: use a plain `def` handler (runs in a thread) or "
                    "await instead of blocking. Locks are still being renewed.",
                    silent,
                    jobs,
                )
                return now - silent
            return blocked_since
        if blocked_since is not None:
            log.warning("the worker's event loop was blocked for %.1f s", self.beat - blocked_since)
        return None

    async def _renew(self, backend: Backend) -> None:
        locks: dict[str, str] = {}
        try:
            tokens = self._pending()
            # Asked before ``locks()``: a fetch that lands in between is then in one of them.
            fetched = await backend.locked_with(tokens) if tokens else {}
            locks = {**fetched, **self._locks()}
            if not locks:
                return
            lost = await backend.extend_locks(locks, self._lock_ms)
        except Exception as exc:
            if isinstance(exc, BackendRefusedError):
                self.refused = exc
            log.warning("renewing %d lock(s) failed: %s", len(locks), exc)
            return
        if not lost:
            return
        still_held = self._locks()  # a job finished meanwhile has no lock to lose
        for job_id in lost:
            if job_id in still_held and job_id not in self.lost:
                self.lost.add(job_id)
                log.warning("job %s: lost its lock; another worker may take it", job_id)
