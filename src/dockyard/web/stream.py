"""Server-sent events of one queue, as a response that owns its store connection: the
connection is closed when the client goes, however early it goes (field report #11)."""

from __future__ import annotations

import contextlib
import json
import logging

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import DockyardError
from ..events import QueueEvents

log = logging.getLogger("dockyard.web")
#: Seconds without events after which a comment line keeps proxies from closing the stream.
KEEP_ALIVE = 10.0


class EventStream(Response):
    """``text/event-stream`` of a :class:`QueueEvents`; closes it on every way out."""

    def __init__(self, follower: QueueEvents) -> None:
        # Not Response.__init__: that would announce a body of length 0.
        self.follower = follower
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_until_disconnect, receive, group.cancel_scope)
                await self._stream(send)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.follower.close()

    async def _stream(self, send: Send) -> None:
        from .app import status_for

        follower = self.follower
        try:
            # Connect fully or not at all: a connect cut short by a leaving client would
            # leave its socket open. The store gives up by itself when unreachable.
            with anyio.CancelScope(shield=True):
                # Pins "now" before the client hears ": connected": what it does after
                # that (add a job, say) is then sure to be in the stream.
                await follower.__aenter__()
        except DockyardError as exc:
            body = json.dumps({"detail": str(exc)}).encode()
            await send({"type": "http.response.start", "status": status_for(exc),
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await _write(send, ": connected\n\n")
            while True:
                event = await follower.next(timeout=KEEP_ALIVE)
                if event is None:
                    await _write(send, ": keep-alive\n\n")
                    continue
                payload = json.dumps({"job_id": event.job_id, **event.data})
                await _write(send, f"id: {event.id}\nevent: {event.name}\ndata: {payload}\n\n")
        except OSError:
            return  # the client went away while we wrote to it
        except DockyardError as exc:
            log.warning("the event stream of %r ended: %s", follower.queue, exc)
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _write(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode(), "more_body": True})


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
