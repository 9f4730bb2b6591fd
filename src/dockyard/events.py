"""QueueEvents: follow a queue's event stream (BullMQ's ``events``) as Python objects.

Usage::

    async with QueueEvents("emails", url=url) as events:
        async for event in events:          # event.name, event.job_id, event.data
            ...

or with callbacks: ``events.on("completed", fn)`` then ``await events.run()``. Reading
starts at "now" (``last_id="$"``) or after a given event id; the last id read is kept, so
a reconnect after an outage resumes where it stopped and misses nothing the stream kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .backends import Backend, open_backend
from .errors import BackendUnavailableError, InvalidOptionError

log = logging.getLogger("dockyard.events")

#: BullMQ's stream field names, as QueueEvent.data keys; values to parse as JSON or numbers.
_FIELD_NAMES = {
    "returnvalue": "return_value",
    "failedReason": "failed_reason",
    "attemptsMade": "attempts_made",
    "deduplicationId": "deduplication_id",
    "deduplicatedJobId": "deduplicated_job_id",
    "debounceId": "debounce_id",
    "data": "progress",
}
_JSON_FIELDS = {"returnvalue", "data"}
_INT_FIELDS = {"attemptsMade", "count"}

Callback = Callable[["QueueEvent"], Awaitable[None] | None]


#: What an event id looks like: "$" (from now), or "<ms>" / "<ms>-<seq>" as streams write.
_EVENT_ID = re.compile(r"\$|\d+(-\d+)?")


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """One entry of the stream: its id, BullMQ's event name, the job, and the other fields
    (snake_case; ``return_value`` and ``progress`` parsed from JSON; ``due`` in seconds for
    ``delayed``)."""

    id: str
    name: str
    job_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_stream(cls, entry_id: str, fields: dict[str, str]) -> QueueEvent:
        """Decode an entry ``(id, {"event": name, **fields})`` of the events stream."""
        data: dict[str, Any] = {}
        name = fields.get("event", "")
        for key, value in fields.items():
            if key in ("event", "jobId"):
                continue
            parsed: Any = value
            if key in _JSON_FIELDS:
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = value
            elif key in _INT_FIELDS:
                parsed = int(value) if value.lstrip("-").isdigit() else value
            elif key == "delay" and name == "delayed" and value.isdigit():
                data["due"] = int(value) / 1000
                continue
            data[_FIELD_NAMES.get(key, key)] = parsed
        return cls(id=entry_id, name=name, job_id=fields.get("jobId"), data=data)


class QueueEvents:
    """An async iterator over the events of one queue; see the module docstring."""

    def __init__(
        self,
        queue: str,
        *,
        url: str | None = None,
        prefix: str = "bull",
        last_id: str = "$",
        block: float = 5.0,
        backend: Backend | None = None,
    ) -> None:
        if not isinstance(last_id, str) or not _EVENT_ID.fullmatch(last_id):
            raise InvalidOptionError(
                f"last_id is an event id like '1700000000000-0' or '$': {last_id!r}"
            )
        if isinstance(block, bool) or not isinstance(block, (int, float)) or block <= 0:
            raise InvalidOptionError(f"block must be a number of seconds > 0, got {block!r}")
        self.queue = queue
        self.last_id = last_id
        self.block = float(block)
        self.backend = (
            backend
            if backend is not None
            else open_backend(url, queue, prefix=prefix, retry_for=None)
        )
        self._buffer: list[QueueEvent] = []
        self._callbacks: dict[str, list[Callback]] = {}
        self._closed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<QueueEvents {self.queue!r} after {self.last_id}>"

    async def __aenter__(self) -> QueueEvents:
        await self._resolve_start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading and release the connection."""
        self._closed.set()
        await self.backend.close()

    async def _resolve_start(self) -> None:
        """Pin ``$`` to the newest id now, so events after this moment are all seen."""
        if self.last_id == "$":
            self.last_id = await self._newest_id()

    async def _newest_id(self) -> str:
        # Read what the stream keeps (bounded by its cap) once and take the last id.
        newest = "0-0"
        while True:
            entries = await self.backend.read_events(newest, 1000, 0.0)
            if not entries:
                return newest
            newest = entries[-1][0]

    def __aiter__(self) -> QueueEvents:
        return self

    async def __anext__(self) -> QueueEvent:
        while not self._buffer:
            if self._closed.is_set():
                raise StopAsyncIteration
            await self._fill()
        return self._buffer.pop(0)

    async def next(self, timeout: float | None = None) -> QueueEvent | None:
        """The next event, or None when ``timeout`` seconds pass first."""
        try:
            async with asyncio.timeout(timeout):
                return await self.__anext__()
        except (TimeoutError, StopAsyncIteration):
            return None

    async def _fill(self) -> None:
        if self.last_id == "$":
            await self._resolve_start()
        delay = 0.1
        while True:
            try:
                entries = await self.backend.read_events(self.last_id, 1000, self.block)
                break
            except BackendUnavailableError as exc:
                if self._closed.is_set():
                    return
                log.warning("events of %r: %s; retrying in %.1f s", self.queue, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for entry_id, fields in entries:
            self.last_id = entry_id
            self._buffer.append(QueueEvent.from_stream(entry_id, fields))

    # -- callbacks --------------------------------------------------------------------

    def on(self, name: str, callback: Callback) -> None:
        """Call ``callback(event)`` for every event named ``name`` (``*``: every event)."""
        self._callbacks.setdefault(name, []).append(callback)

    async def run(self) -> None:
        """Dispatch events to the callbacks until :meth:`close`."""
        async for event in self:
            for callback in (*self._callbacks.get(event.name, ()), *self._callbacks.get("*", ())):
                result = callback(event)
                if result is not None:
                    await result
