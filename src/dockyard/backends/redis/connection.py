"""A small asyncio Redis client: RESP over one socket, auto-pipelined, parsed by hiredis.

Commands written during one event-loop turn go out together, in writes of about 16 KB;
replies are matched to callers in order. :class:`RedisClient` adds reconnection with backoff and
turns an unreachable server into :class:`~dockyard.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis

from ...errors import BackendUnavailableError, InvalidJobError
from .address import RedisAddress, TlsOptions
from .health import check_version
from .refusals import FAILOVER_REPLIES, permission_error, setup_refusal, tls_refusal
from .replies import (
    ConnectionLost,
    FailoverReply,
    OutOfMemoryReply,
    PermissionReply,
    ReplyError,
    checked,
)
from .slots import REDIRECT_REPLIES, ClusterRedirect

__all__ = ["Connection", "ConnectionLost", "FailoverReply", "OutOfMemoryReply",
           "PermissionReply", "RedisAddress", "RedisClient", "ReplyError", "TlsOptions",
           "checked"]  # fmt: skip

log = logging.getLogger("dockyard.redis")

_pack = hiredis.pack_command

#: Error replies a Sentinel- or Cluster-followed connection turns into exceptions that
#: the client answers by sending the command again (none of them ran it).
_FOLLOWED_REPLIES = FAILOVER_REPLIES + REDIRECT_REPLIES
#: Write out at once when this much is buffered, not at the end of the loop turn. Redis
#: reads 16 KB per turn of its own loop and replies after each read: it starts on the first
#: commands while we still produce the rest, and a worker's finishes stay spread over
#: several batches in flight instead of settling into one that Redis and Python take turns
#: on (measured: 21-27k → 31-32k no-op jobs/s, bench/RESULTS.md).
EAGER_WRITE_BYTES = 16 * 1024


class _Protocol(asyncio.Protocol):
    """Matches hiredis-parsed replies to the futures of the commands, in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ReplyError)
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        #: Set on connections to a Sentinel-named primary: failover replies become
        #: FailoverReply and mark the connection stale (closed once its replies are in).
        self.follow_failover = False
        self.stale = False
        #: The server this socket reaches (redirects are relative to it).
        self.node: RedisAddress | None = None
        #: Cluster: each pending command's arguments (None: not to be resent), and who
        #: resends a redirected one; its caller's future is resolved by the resend.
        self.commands: deque[Sequence[Any] | None] | None = None
        self.on_redirect: Callable[[asyncio.Future[Any], Sequence[Any], Any], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(ConnectionLost(f"Redis protocol error: {exc}"))
                if self.transport is not None:
                    self.transport.close()
                return
            if reply is False:
                return
            if not pending:
                # A reply nobody asked for: the stream is out of step, trust nothing on it.
                self._fail(ConnectionLost("Redis sent a reply no command was waiting for"))
                if self.transport is not None:
                    self.transport.close()
                return
            fut = pending.popleft()
            args = self.commands.popleft() if self.commands is not None else None
            if (
                self.follow_failover
                and isinstance(reply, ReplyError)
                and str(reply).startswith(_FOLLOWED_REPLIES)
            ):
                followed = self._followed(str(reply))
                if fut.done():
                    pass
                elif args is not None and self.on_redirect is not None:
                    self.on_redirect(fut, args, followed)
                else:
                    fut.set_exception(followed)
            elif not fut.done():
                fut.set_result(reply)
            if self.stale and not pending and self.transport is not None:
                self.transport.close()

    def _followed(self, text: str) -> Exception:
        """The exception for a failover or redirect reply; marks the connection stale
        when its server no longer serves the command's keys."""
        node = self.node
        if node is not None and node.cluster is not None:  # READONLY etc. included
            redirect = ClusterRedirect(text, node)
            self.stale = self.stale or redirect.stale
            return redirect
        self.stale = True
        return FailoverReply(f"Redis is not the primary now: {text}")

    def connection_lost(self, exc: Exception | None) -> None:
        lost = ConnectionLost(f"connection to Redis lost: {exc or 'closed'}")
        lost.__cause__ = exc  # a TLS alert behind it tells a final refusal apart
        self._fail(lost)

    def _fail(self, exc: Exception) -> None:
        self.lost = exc
        if self.commands is not None:
            self.commands.clear()
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(exc)


def _setup_commands(address: RedisAddress, name: str | None) -> list[tuple[Any, ...]]:
    """What every new connection sends first, in one write."""
    setup: list[tuple[Any, ...]] = []
    if address.password is not None:
        if address.username:
            setup.append(("AUTH", address.username, address.password))
        else:
            setup.append(("AUTH", address.password))
    if address.db:
        setup.append(("SELECT", address.db))
    if name:
        setup.append(("CLIENT", "SETNAME", name))
    setup.append(("INFO", "server"))
    return setup


def _checked_version(conn: Connection, info: Any) -> None:
    try:
        check_version(info, conn.address)
    except BaseException:
        conn.close()
        raise


class Connection:
    """One open socket to Redis; commands are pipelined automatically."""

    def __init__(self, protocol: _Protocol, address: RedisAddress) -> None:
        self._protocol = protocol
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.address = address
        protocol.node = address

    @classmethod
    async def open(
        cls,
        address: RedisAddress,
        *,
        name: str | None = None,
        timeout: float = 5.0,
        follow_failover: bool = False,
    ) -> Connection:
        """Connect, log in, select the database, name the connection and check the server's
        version, in one round trip; a refusal that will not heal raises a
        BackendRefusedError subclass, anything that may pass an OSError (retried)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            try:
                if address.path:
                    _, protocol = await loop.create_unix_connection(_Protocol, address.path)
                else:
                    context = address.tls.context() if address.tls else None
                    _, protocol = await loop.create_connection(
                        _Protocol, address.host, address.port, ssl=context
                    )
            except ssl.SSLError as exc:
                refusal = tls_refusal(exc, address)
                if refusal is not None:
                    raise refusal from None
                raise
            conn = cls(protocol, address)
            setup = _setup_commands(address, name)
            try:
                replies = await asyncio.gather(*(conn.send(c) for c in setup))
            except BaseException as exc:
                conn.close()  # cancelled or timed out mid set-up: leave no socket behind
                refusal = tls_refusal(exc, address) if address.tls else None
                if refusal is not None:
                    raise refusal from None
                raise
            for command, reply in zip(setup, replies, strict=True):
                if command[0] == "INFO":
                    if not isinstance(reply, ReplyError):
                        _checked_version(conn, reply)
                    elif not isinstance(reply, PermissionReply):  # no INFO for this user: skip
                        conn.close()
                        raise setup_refusal(reply, command, address)
                elif isinstance(reply, ReplyError):
                    conn.close()
                    raise setup_refusal(reply, command, address)
        protocol.follow_failover = follow_failover
        if address.cluster is not None:
            protocol.commands = deque()
        return conn

    @property
    def closed(self) -> bool:
        """True once the socket is gone (or, Sentinel-followed, its server was demoted)."""
        protocol = self._protocol
        return protocol.lost is not None or protocol.transport is None or protocol.stale

    def send(self, args: Sequence[Any], *, resend: bool = True) -> asyncio.Future[Any]:
        """Queue one command; the future gets its reply (a ReplyError instance on error).
        On a cluster a redirected command is sent again where it belongs (``resend``
        False: the redirect is the future's exception instead).

        The command is encoded before its future joins the queue of pending replies: an
        argument that cannot be sent fails only this call (InvalidJobError), and every
        later reply still reaches its own caller.
        """
        protocol = self._protocol
        fut: asyncio.Future[Any] = self._loop.create_future()
        if protocol.lost is not None:
            fut.set_exception(protocol.lost)
            return fut
        try:
            packed = _pack(tuple(args))
        except (UnicodeError, TypeError, ValueError) as exc:
            fut.set_exception(
                InvalidJobError(f"a value cannot be sent to Redis, nothing was written: {exc}")
            )
            return fut
        idle = not protocol.pending
        protocol.pending.append(fut)
        if protocol.commands is not None:
            protocol.commands.append(args if resend else None)
        self._buffer.append(packed)
        self._buffered += len(packed)
        if idle or self._buffered >= EAGER_WRITE_BYTES:
            # Nothing in flight: the server is waiting, so a lone request (an add, a read)
            # goes out now instead of a loop turn later; commands that follow in this turn
            # are batched as usual.
            self._write()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._buffer:
            self._write()

    def _write(self) -> None:
        buffer, self._buffer, self._buffered = self._buffer, [], 0
        transport = self._protocol.transport
        if transport is None or transport.is_closing():
            # connection_lost fails the pending futures, these commands' included.
            return
        try:
            transport.write(b"".join(buffer))
        except Exception as exc:  # any failed write leaves the stream unknown
            # Part of the batch may have gone out: no later reply can be matched safely.
            transport.close()
            self._protocol._fail(ConnectionLost(f"writing to Redis failed: {exc!r}"))

    async def execute(self, *args: Any) -> Any:
        """Run one command and return its reply; raise ReplyError for an error reply (an
        ACL refusal as BackendPermissionError naming the command and key)."""
        reply = await self.send(args)
        if isinstance(reply, ReplyError):
            if isinstance(reply, PermissionReply):
                raise permission_error(str(reply), args, self.address) from None
            raise reply
        return reply

    async def many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run ``commands`` in one write; their replies, raising the first error reply (an
        ACL refusal as BackendPermissionError naming its command and key)."""
        replies = await asyncio.gather(*(self.send(command) for command in commands))
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, PermissionReply):
                raise permission_error(str(reply), command, self.address) from None
        return checked(replies)

    def close(self) -> None:
        """Close the socket; pending commands fail with ConnectionLost."""
        transport = self._protocol.transport
        if transport is not None:
            transport.close()
        self._protocol._fail(ConnectionLost("connection closed by dockyard"))


class RedisClient:
    """A connection that reopens itself: the first use after a loss reconnects with backoff.

    ``retry_for`` bounds how long (seconds) reconnection is tried before
    BackendUnavailableError; None tries until cancelled (workers use that).
    """

    def __init__(
        self,
        address: RedisAddress,
        *,
        name: str | None = None,
        retry_for: float | None = 20.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.address = address
        self.name = name
        self.retry_for = retry_for
        self.connect_timeout = connect_timeout
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        #: Sentinel: each command goes through :meth:`_following_failover`.
        self._follow = address.sentinel is not None
        #: Cluster: the node a MOVED reply named, tried first on the next connection.
        self.moved_to: RedisAddress | None = None
        #: Cluster: the connection to the node an ASK reply named (a slot being migrated).
        self.ask_conn: Connection | None = None
        #: Cluster: redirected commands being sent again (see :mod:`.cluster`).
        self._resends: set[asyncio.Task[None]] = set()

    async def connection(self) -> Connection:
        """The open connection, reconnecting (with exponential backoff) when needed."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._lock:
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            conn = await self._reconnect(conn is not None)
            if self._closed:  # closed while connecting: this socket has no owner any more
                conn.close()
                raise BackendUnavailableError("this Redis client was closed")
            self._conn = conn
            return conn

    async def _reconnect(self, was_connected: bool) -> Connection:
        if self._closed:
            raise BackendUnavailableError("this Redis client was closed")
        deadline = None if self.retry_for is None else time.monotonic() + self.retry_for
        pause = 0.05
        attempt = 0
        while True:
            attempt += 1
            try:
                conn = await self._open()
            except (OSError, TimeoutError) as exc:
                now = time.monotonic()
                reason = str(exc) or f"no answer within {self.connect_timeout:g} s"
                if deadline is not None and now >= deadline:
                    hint = ""
                    if self.address.tls and isinstance(exc, TimeoutError):
                        hint = " (a plain port never answers a TLS handshake: is it the tls-port?)"
                    raise BackendUnavailableError(
                        f"cannot reach Redis at {self.address}: {reason}{hint}. Is it running, "
                        "and is the URL right?"
                    ) from None
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("Redis at %s unreachable (%s); retrying", self.address, reason)
                # Never sleep past the deadline: try once more right at it.
                await asyncio.sleep(pause if deadline is None else min(pause, deadline - now))
                pause = min(pause * 2, 2.0)
                continue
            if was_connected or attempt > 1:
                log.warning("reconnected to Redis at %s", self.address)
            return conn

    async def _open(self) -> Connection:
        """A new connection: to the address itself, to the primary its sentinels name, or
        to the cluster node serving its slot."""
        if self.address.cluster is not None:
            from .cluster import open_slot_owner

            hint, self.moved_to = self.moved_to, None  # a hint that fails is not retried
            conn = await open_slot_owner(
                self.address, name=self.name, timeout=self.connect_timeout, hint=hint
            )
            conn._protocol.on_redirect = self._redirected
            return conn
        if self.address.sentinel is None:
            return await Connection.open(self.address, name=self.name, timeout=self.connect_timeout)
        from .sentinel import open_primary

        return await open_primary(self.address, name=self.name, timeout=self.connect_timeout)

    async def execute(self, *args: Any) -> Any:
        """Run one command; raise ConnectionLost if the connection drops before the reply."""
        if self._follow:
            return await self._following_failover(args, execute=True)
        conn = await self.connection()
        return await conn.execute(*args)

    def send(self, args: Sequence[Any]) -> Awaitable[Any]:
        """Run one command; an error reply is returned as a ReplyError, not raised.

        While connected this is the connection's own future: no coroutine per command.
        """
        if self._follow:
            return self._following_failover(args, execute=False)
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn.send(args)
        return self._send_reconnecting(args)

    async def _following_failover(self, args: Sequence[Any], *, execute: bool) -> Any:
        """Run one command on the Sentinel-named primary; a FailoverReply (the command
        was not run) sends it again to the primary found anew, until the retry window ends."""
        deadline: float | None = None
        pause = 0.05
        while True:
            conn = await self.connection()
            try:
                return await (conn.execute(*args) if execute else conn.send(args))
            except FailoverReply:
                now = time.monotonic()
                if deadline is None:
                    log.warning("Redis at %s is not the primary now; finding it", conn.address)
                    window = self.retry_for if self.retry_for is not None else float("inf")
                    deadline = now + window
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 1.0)

    def _redirected(self, fut: asyncio.Future[Any], args: Sequence[Any], redirect: Any) -> None:
        """A cluster node did not run a command: send it again off the caller's path
        (:func:`.cluster.resend`), which resolves the caller's future."""
        from .cluster import resend

        task = asyncio.get_running_loop().create_task(resend(self, fut, args, redirect))
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)

    async def _send_reconnecting(self, args: Sequence[Any]) -> Any:
        conn = await self.connection()
        return await conn.send(args)

    def drop(self) -> None:
        """Close the current socket (e.g. to break a blocking command); reconnects on next use."""
        if self._conn is not None:
            self._conn.close()

    async def close(self) -> None:
        """Close for good."""
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.ask_conn is not None:
            self.ask_conn.close()
        for task in list(self._resends):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)
