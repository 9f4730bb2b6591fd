"""Redis Cluster: the slot map, and a connection to the primary serving a queue's slot.

A queue is served by one primary, over one connection used exactly like a single
server's (same scripts, one script call per finished job); :class:`~.connection.RedisClient`
connects to the slot's owner (asking the seeds for the slot map, or going where a MOVED
reply said) and follows ``MOVED``, ``ASK``, ``TRYAGAIN`` and ``CLUSTERDOWN`` replies
through resharding and failovers. Slot arithmetic lives in :mod:`.slots`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import InvalidOptionError
from .address import RedisAddress
from .connection import Connection, ReplyError


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
