"""Redis Cluster: the slot map, and a connection to the primary serving a queue's slot.

A queue is served by one primary, over one connection used exactly like a single
server's (same scripts, one script call per finished job); :class:`~.connection.RedisClient`
connects to the slot's owner (asking the seeds for the slot map, or going where a MOVED
reply said) and follows ``MOVED``, ``ASK``, ``TRYAGAIN`` and ``CLUSTERDOWN`` replies
through resharding and failovers. Slot arithmetic lives in :mod:`.slots`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import InvalidOptionError
from .address import RedisAddress
from .connection import Connection, ConnectionLost, PermissionReply, ReplyError
from .refusals import permission_error
from .slots import ClusterRedirect

if TYPE_CHECKING:
    from .connection import RedisClient

log = logging.getLogger("dockyard.redis")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _node(address: RedisAddress, entry: Any) -> RedisAddress:
    """A node of a CLUSTER SLOTS entry (``[host, port, id, ...]``) as an address; an
    empty or ``?`` host means the one that was asked."""
    host = _text(entry[0])
    if host in ("", "?"):
        host = address.host
    return dataclasses.replace(address, host=host, port=int(entry[1]), path=None)


async def slot_map(address: RedisAddress, *, timeout: float) -> list[tuple[int, int, RedisAddress]]:
    """``(first, last, primary)`` of each slot range, from the first seed that answers
    CLUSTER SLOTS; ConnectionError when none does."""
    cluster = address.cluster
    assert cluster is not None
    failures: list[str] = []
    for host, port in cluster.seeds:
        seed = dataclasses.replace(address, host=host, port=port)
        try:
            conn = await Connection.open(seed, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            failures.append(f"{host}:{port}: {exc or 'no answer'}")
            continue
        try:
            reply = await conn.send(("CLUSTER", "SLOTS"))
        finally:
            conn.close()
        if isinstance(reply, PermissionReply):  # final: the ACL must allow it
            raise permission_error(str(reply), ("CLUSTER", "SLOTS"), seed) from None
        if isinstance(reply, ReplyError):
            if "cluster support disabled" in str(reply):
                raise InvalidOptionError(
                    f"Redis at {host}:{port} is not part of a cluster ({reply}); use "
                    "redis://host:port for a single server"
                )
            failures.append(f"{host}:{port}: {reply}")
            continue
        ranges = [(int(entry[0]), int(entry[1]), _node(seed, entry[2])) for entry in reply]
        if ranges:
            return ranges
        failures.append(f"{host}:{port}: no slots assigned yet")
    raise ConnectionError(
        f"no seed of {address} gave the cluster's slot map (" + "; ".join(failures) + ")"
    )


async def open_slot_owner(
    address: RedisAddress, *, name: str | None, timeout: float, hint: RedisAddress | None
) -> Connection:
    """A connection to the primary serving the address's slot: the node a MOVED reply
    named (``hint``), else the one the slot map names. A slot no node serves (a failover
    under way) is a ConnectionError, to be retried."""
    cluster = address.cluster
    assert cluster is not None
    node = hint
    if node is None:
        slot = cluster.slot or 0
        owners = [n for first, last, n in await slot_map(address, timeout=timeout)
                  if first <= slot <= last]  # fmt: skip
        if not owners:
            raise ConnectionError(f"no node of {address} serves slot {slot} now")
        node = owners[0]
    conn = await Connection.open(node, name=name, timeout=timeout, follow_failover=True)
    conn.address = address  # messages name the cluster and slot; redirects use the node
    return conn


async def primaries(address: RedisAddress, *, timeout: float) -> list[RedisAddress]:
    """Every primary of the cluster once (e.g. to SCAN each for queue names)."""
    seen: dict[tuple[str, int], RedisAddress] = {}
    for _, _, node in await slot_map(address, timeout=timeout):
        seen.setdefault((node.host, node.port), node)
    return list(seen.values())


async def resend(
    client: RedisClient, fut: asyncio.Future[Any], args: Sequence[Any], redirect: ClusterRedirect
) -> None:
    """Send a redirected command again and give its reply to ``fut`` (the caller's, who
    never sees the redirect): to the node an ASK names, preceded by ASKING; after a MOVED
    to the slot's new owner at once; after a TRYAGAIN or CLUSTERDOWN (or a second MOVED)
    after a short, growing pause; until the client's retry window ends, when the last
    redirect becomes the caller's error."""
    try:
        reply = await _follow(client, args, redirect)
    except asyncio.CancelledError:  # the client was closed
        if not fut.done():
            fut.set_exception(ConnectionLost("the Redis client was closed"))
        raise
    except BaseException as exc:
        if not fut.done():
            fut.set_exception(exc)
        return
    if not fut.done():
        fut.set_result(reply)


async def _follow(client: RedisClient, args: Sequence[Any], redirect: ClusterRedirect) -> Any:
    deadline: float | None = None
    pause = 0.05
    moves = 0
    while True:
        if redirect.kind == "ASK" and redirect.target is not None:
            try:
                return await _asking(client, redirect.target, args)
            except ClusterRedirect as again:
                redirect = again
        wait = True
        if redirect.kind == "MOVED":
            client.moved_to = redirect.target
            moves += 1
            wait = moves > 1  # the slot's new owner is named: go there at once
        if wait:
            now = time.monotonic()
            if deadline is None:
                log.info("%s; following it", redirect)
                window = client.retry_for if client.retry_for is not None else float("inf")
                deadline = now + window
            if now >= deadline:
                raise redirect
            await asyncio.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 1.0)
        conn = await client.connection()
        try:
            return await conn.send(args, resend=False)
        except ClusterRedirect as again:
            redirect = again


async def _asking(client: RedisClient, node: RedisAddress, args: Sequence[Any]) -> Any:
    """Send one command to the node importing the slot, right behind ASKING (which lets
    that node serve the next command before it owns the slot)."""
    conn = client.ask_conn
    if conn is None or conn.closed or conn.address != node:
        if conn is not None:
            conn.close()
        conn = client.ask_conn = await Connection.open(
            node, timeout=client.connect_timeout, follow_failover=True
        )
    asking = conn.send(("ASKING",), resend=False)
    sent = conn.send(args, resend=False)
    await asking  # +OK (a refusal of it would show in the command's own reply)
    return await sent
