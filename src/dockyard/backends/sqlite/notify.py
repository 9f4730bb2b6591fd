"""Waking waiters when another connection commits to the same SQLite file.

One thread per file per process, with a connection of its own, reads
``PRAGMA data_version`` every 20 ms, and only while someone waits. The value changes when
any other connection (of this process or another) commits; reading it touches the WAL
index in shared memory, not the database pages, so idle workers cost almost nothing and
still wake within a few tens of milliseconds of a new job.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import sqlite3
import threading

from ..wakeup import Waiter

POLL_SECONDS = 0.02


class Notifier:
    """Watches one file; see the module docstring."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._conn: sqlite3.Connection | None = None
        self._waiters: set[Waiter] = set()
        self._thread: threading.Thread | None = None

    def version(self) -> int:
        """The file's change counter as this watcher sees it now."""
        with self._lock:
            return self._read()

    def _read(self) -> int:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    async def wait(self, seen: int, timeout: float) -> None:
        """Return when the file changed since ``seen`` (a :meth:`version`), or after
        ``timeout`` seconds, or when :meth:`wake_all` is called."""
        waiter = Waiter(seen)
        with self._lock:
            self._waiters.add(waiter)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._poll, name=f"dockyard-sqlite-notify {self.path}", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def wake_all(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Wake every waiter (of ``loop`` only, when given)."""
        with self._lock:
            for waiter in self._waiters:
                if loop is None or waiter.loop is loop:
                    waiter.wake()

    def _poll(self) -> None:
        while True:
            with self._lock:
                while not self._waiters:
                    if not self._changed.wait(timeout=30.0) and not self._waiters:
                        self._thread = None
                        return
                try:
                    now = self._read()
                except sqlite3.Error:
                    now = -1  # the file is busy or gone: wake everyone to look for themselves
                for waiter in list(self._waiters):
                    if waiter.seen != now:
                        waiter.wake()
                        self._waiters.discard(waiter)
            threading.Event().wait(POLL_SECONDS)


    def close(self) -> None:
        """Close this watcher's connection (reopened if anyone waits again)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_NOTIFIERS: dict[str, Notifier] = {}
_NOTIFIERS_LOCK = threading.Lock()


@atexit.register
def _close_all() -> None:
    """At exit, close the watchers' connections: the last connection to close removes the
    file's ``-wal`` and ``-shm`` (field report #25); one left open kept them on disk."""
    with _NOTIFIERS_LOCK:
        for notifier in _NOTIFIERS.values():
            with contextlib.suppress(sqlite3.Error):
                notifier.close()


def notifier_for(path: str) -> Notifier:
    """The process's watcher of the file at ``path``."""
    with _NOTIFIERS_LOCK:
        notifier = _NOTIFIERS.get(path)
        if notifier is None:
            notifier = _NOTIFIERS[path] = Notifier(path)
        return notifier
