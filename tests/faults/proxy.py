"""A TCP proxy in front of a redis-server that can lose one reply on purpose.

``hold_reply_to(needle)`` arms it: the next client chunk containing ``needle`` is still
forwarded to the server (so the command runs), but from then on that connection passes
nothing more in either direction. ``cut()`` then aborts it, as a network failure after the
server applied the command and before its answer arrived.
"""

from __future__ import annotations

import asyncio
import contextlib


class ReplyLosingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._needle: bytes | None = None
        self._held: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def holding(self) -> bool:
        """True once a connection matched the needle and is being held."""
        return bool(self._held)

    async def start(self) -> ReplyLosingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def hold_reply_to(self, needle: bytes) -> None:
        self._needle = needle

    def cut(self) -> None:
        """Abort the held connection(s): their client sees the socket die."""
        for client, upstream in self._held:
            client.transport.abort()
            upstream.transport.abort()
        self._held.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        held = False

        async def to_server() -> None:
            nonlocal held
            while data := await reader.read(1 << 16):
                if held:
                    continue  # nothing more reaches the server on a held connection
                if self._needle is not None and self._needle in data:
                    self._needle = None
                    held = True
                    self._held.append((writer, up_writer))
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def to_client() -> None:
            while data := await up_reader.read(1 << 16):
                if held:
                    continue  # the answer is lost
                writer.write(data)
                await writer.drain()
            writer.close()

        try:
            await asyncio.gather(to_server(), to_client())
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
            self._tasks.discard(task)
