"""Waking waiters when a transaction commits to a dockyard schema: LISTEN/NOTIFY.

One thread per database per process holds a connection of its own that ``LISTEN``s on
the channel every write transaction notifies, and only while someone waits. The payload
``<schema>:<qid>`` names the queue written, so a commit wakes the waiters of that queue
(and those of the whole schema: a store not yet open), not those of every queue of the
schema; a payload of the schema alone (an older dockyard) wakes them all. A notification
bumps the change counters it names and wakes their waiters; a waiter never sleeps more
than :data:`BACKSTOP` seconds before looking again, so a lost notification (a dropped
connection, a restart) delays a job by a second at most.
Same interface as the SQLite notifier, so the backend's waiting loops are shared.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

import psycopg

from ..wakeup import Waiter
from .store import CHANNEL

#: The longest a waiter sleeps without looking (the polling backstop), seconds.
BACKSTOP = 1.0
_IDLE_SECONDS = 10.0
#: How long a waiter sleeps while the listener is still connecting.
_STARTING = 0.02


class Listener:
    """The LISTEN connection of one database; see the module docstring."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._lock = threading.Lock()
        self._versions: dict[str, int] = defaultdict(int)
        self._waiters: set[Waiter] = set()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()

    def version(self, tag: str) -> int:
        """The change counter of ``tag`` (``<schema>`` or ``<schema>:<qid>``) as this
        listener has seen it."""
        with self._lock:
            self._start()
            return self._versions[tag]

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._listening.clear()
            self._thread = threading.Thread(
                target=self._listen, name="dockyard-postgres-listen", daemon=True
            )
            self._thread.start()

    async def wait(self, tag: str, seen: int, timeout: float) -> None:
        """Return when ``tag`` changed since ``seen``, after ``timeout`` s (at most
        :data:`BACKSTOP`), or when :meth:`wake_all` is called."""
        waiter = Waiter(seen, tag)
        with self._lock:
            if self._versions[tag] != seen:
                return
            self._waiters.add(waiter)
            self._start()
        # Until LISTEN is in place a notification can be missed: look again soon.
        cap = BACKSTOP if self._listening.is_set() else _STARTING
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), min(timeout, cap))
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

    def _bump(self, payload: str | None) -> None:
        with self._lock:
            versions = self._versions
            if payload is None:  # reconnected: anything may have changed meanwhile
                tags = set(versions)
            elif ":" in payload:  # one queue, and its schema
                tags = {payload, payload.partition(":")[0]}
            else:  # a whole schema
                tags = {t for t in versions if t.partition(":")[0] == payload} | {payload}
            for tag in tags:
                versions[tag] += 1
            for waiter in list(self._waiters):
                if waiter.tag in tags:
                    waiter.wake()
                    self._waiters.discard(waiter)

    def _listen(self) -> None:
        idle = 0.0
        while True:
            try:
                with psycopg.connect(
                    self.conninfo,
                    autocommit=True,
                    application_name="dockyard-listen",
                    connect_timeout=5,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._bump(None)
                    while True:
                        got = False
                        for note in conn.notifies(timeout=1.0):
                            got = True
                            self._bump(note.payload)
                        with self._lock:
                            idle = 0.0 if (got or self._waiters) else idle + 1.0
                            if idle >= _IDLE_SECONDS:
                                self._thread = None
                                return
            except psycopg.Error:
                self._listening.clear()
                threading.Event().wait(0.5)  # the server restarts, or is gone: retry
                with self._lock:
                    if not self._waiters:
                        self._thread = None
                        return


_LISTENERS: dict[str, Listener] = {}
_LISTENERS_LOCK = threading.Lock()


def listener_for(conninfo: str) -> Listener:
    """The process's listener on the database at ``conninfo``."""
    with _LISTENERS_LOCK:
        found = _LISTENERS.get(conninfo)
        if found is None:
            found = _LISTENERS[conninfo] = Listener(conninfo)
        return found


class Notifier:
    """One queue's view of a :class:`Listener` (its schema's until the store is open and
    the queue's id known), with the SQLite notifier's interface."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self._listener = listener_for(conninfo)
        self._schema = schema
        self._tag = schema

    def set_queue(self, qid: int) -> None:
        """From now on, wait for changes of queue ``qid`` only."""
        self._tag = f"{self._schema}:{qid}"

    def version(self) -> int:
        return self._listener.version(self._tag)

    async def wait(self, seen: int, timeout: float) -> None:
        await self._listener.wait(self._tag, seen, timeout)

    def wake_all(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._listener.wake_all(loop)
